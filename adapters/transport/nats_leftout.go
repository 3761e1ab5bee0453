//go:build nonats

package transport

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
)

// This build leaves the nats transport out (-tags nonats): PUBSUB=nats, its
// poison queue and its teardown answer so.

type natsTransport struct{}

func newNATSTransport(Config, watermill.LoggerAdapter) (*Transport, error) {
	return nil, leftOut(KindNATS)
}
func newNATSPoisonQueue(Config) (PoisonQueue, error) { return nil, leftOut(KindNATS) }
func teardownNATS(context.Context, Config, bool) ([]RemovedResources, error) {
	return nil, leftOut(KindNATS)
}
func natsTransient(error) bool                                            { return false }
func (c *BacklogReader) readNATSHandlers(context.Context, *reading) error { return leftOut(KindNATS) }
func (c *BacklogReader) readNATSPoison(context.Context, *reading) error   { return leftOut(KindNATS) }
