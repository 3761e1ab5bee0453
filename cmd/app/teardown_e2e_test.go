package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/e2e"
)

// After a deployment ran, `transport teardown`, with its service stopped,
// removes what the deployment's namespace (the database's default) holds
// on its transport, and says what; run again, it finds nothing. A second
// deployment on the same broker loses nothing: it keeps serving. While
// the service runs, a teardown on a broker that tells refuses.
func TestE2E_TransportTeardown(t *testing.T) {
	t.Parallel()
	for _, pubsub := range append([]string{transport.KindSQL}, brokers...) {
		t.Run(pubsub, func(t *testing.T) {
			t.Parallel()
			testTransportTeardown(t, pubsub)
		})
	}
}

func testTransportTeardown(t *testing.T, pubsub string) {
	a, b := startDeployment(t, pubsub, ""), startDeployment(t, pubsub, "")
	namespace := a.ServingNamespace()
	user := registerMany(t, a, "a", 1)[0]
	require.Eventually(t, func() bool { return a.SMTP.CountTo(user.Email) == 1 }, e2e.EffectsTimeout, e2e.Poll,
		"the deployment ran: %s got its email", user.Email)

	if pubsub == transport.KindAMQP || pubsub == transport.KindNATS || pubsub == transport.KindRedis {
		out, err := a.TryOperator(t, "transport", "teardown")
		require.Error(t, err, "a teardown while the service runs fails: %s", out)
		t.Logf("transport teardown while the service runs:\n%s", out)
		assert.Contains(t, out, "removed nothing")
		assert.Contains(t, out, "stop every service of the namespace first, or add -force")
	}
	a.proc.Stop(t)
	out := a.Operator(t, "transport", "teardown")
	t.Logf("transport teardown:\n%s", out)
	assert.True(t, strings.HasPrefix(out, "removed from namespace "+namespace+" on PUBSUB="+pubsub+":\n"), out)
	handled := "events.UserRegistered" // a table is per topic
	if pubsub != transport.KindSQL {
		handled = event.SendWelcomeEmailName // a queue, consumer, group or subscription per handler
	}
	assert.Contains(t, out, handled)
	assert.NotContains(t, out, b.ServingNamespace(), "nothing of the other deployment")
	assert.NotContains(t, out, "://", "no address")
	assert.NotContains(t, out, user.Email)
	assert.Equal(t, "namespace "+namespace+" holds nothing on PUBSUB="+pubsub+": nothing to remove\n",
		a.Operator(t, "transport", "teardown"))

	other := registerMany(t, b, "b", 1)[0]
	assert.Eventually(t, func() bool { return b.SMTP.CountTo(other.Email) == 1 }, e2e.EffectsTimeout, e2e.Poll,
		"the other deployment keeps serving: %s gets its email", other.Email)
	assert.Equal(t, "no poisoned messages\n", b.Operator(t, "poison", "list"))
}
