package service

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/onboard/onboard/ports/messages"
)

// The topology a teardown removes on RabbitMQ names every handler the
// service runs, on its topic, and no other.
func TestTopology_NamesTheHandlersTheServiceRuns(t *testing.T) {
	t.Parallel()
	s := startServiceOnSQLite(t)
	assert.ElementsMatch(t, s.svc.handlerTopics, messages.Topology().Handlers)
	assert.Len(t, s.svc.handlerTopics, len(s.svc.handlers.Handlers()), "a subscription per handler of the router")
}
