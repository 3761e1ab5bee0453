//go:build nosqs

package transport

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
)

// This build leaves the sqs transport out (-tags nosqs): PUBSUB=sqs, its
// poison queue and its teardown answer so.

type sqsTransport struct{}

func newSQSTransport(Config, watermill.LoggerAdapter) (*Transport, error) {
	return nil, leftOut(KindSQS)
}
func newSQSPoisonQueue(Config) (PoisonQueue, error)                      { return nil, leftOut(KindSQS) }
func teardownSQS(context.Context, Config) ([]RemovedResources, error)    { return nil, leftOut(KindSQS) }
func sqsTransient(error) bool                                            { return false }
func (c *BacklogReader) readSQSHandlers(context.Context, *reading) error { return leftOut(KindSQS) }
func (c *BacklogReader) readSQSPoison(context.Context, *reading) error   { return leftOut(KindSQS) }
