//go:build nogooglecloud

package transport

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
)

// This build leaves the googlecloud transport out (-tags nogooglecloud):
// PUBSUB=googlecloud, its poison queue and its teardown answer so.

type googleCloudTransport struct{}

func newGoogleCloudTransport(Config, watermill.LoggerAdapter) (*Transport, error) {
	return nil, leftOut(KindGoogleCloud)
}
func newGoogleCloudPoisonQueue(Config) (PoisonQueue, error) { return nil, leftOut(KindGoogleCloud) }
func teardownGoogleCloud(context.Context, Config) ([]RemovedResources, error) {
	return nil, leftOut(KindGoogleCloud)
}
func googleCloudTransient(error) bool { return false }
func (c *BacklogReader) readHeldHandlers(context.Context, *reading) error {
	return leftOut(KindGoogleCloud)
}
