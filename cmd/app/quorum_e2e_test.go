package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// TestE2E_QuorumQueues: on RabbitMQ's quorum queues, every registration
// gets its email and its points once; through an SMTP outage, a welcome
// email delivered AMQP_DELIVERY_LIMIT times goes to the poison queue,
// listed with the reason, instead of coming back forever, and `poison
// requeue` sends it once the server is back.
func TestE2E_QuorumQueues(t *testing.T) {
	t.Parallel()
	d := e2e.Deploy(t, e2e.Config{PubSub: transport.KindAMQP, Database: testenv.PostgresDatabase, SMTP: true,
		Vars: map[string]string{"AMQP_QUEUE_TYPE": "quorum", "AMQP_DELIVERY_LIMIT": "2"}})
	_, api := d.Serve(t)
	run := e2e.RunID()
	users := newUsers("quorum", run, 10)
	for i := range users {
		users[i] = api.MustRegister(t, users[i])
	}
	e2e.RequireProgress(t, d.DB, func() bool {
		for _, u := range users {
			if d.SMTP.CountTo(u.Email) == 0 || !api.HasSignupPoints(u.ID) {
				return false
			}
		}
		return true
	}, e2e.EffectsTimeout, "every user has its email and points")
	for _, u := range users {
		assert.Equal(t, 1, d.SMTP.CountTo(u.Email), u.Email)
	}

	// Each delivery retries the outage some 10 s before its nack: three
	// deliveries take half a minute.
	d.SMTP.SetFailing(true)
	late := api.MustRegister(t, newUsers("quorum-late", run, 1)[0])
	var id string
	require.Eventually(t, func() bool {
		for _, line := range strings.Split(poisonCommand(t, d, "list"), "\n") {
			if strings.Contains(line, "SendWelcomeEmailOnUserRegistered") && strings.Contains(line, "delivery limit") {
				id = strings.Fields(line)[0]
				return true
			}
		}
		return false
	}, 3*poisonRetriesTimeout, e2e.CommandPoll, "the welcome email left its queue at the delivery limit")
	assert.True(t, api.HasSignupPoints(late.ID), "the other handler granted the points meanwhile")

	d.SMTP.SetFailing(false)
	assert.Contains(t, poisonCommand(t, d, "requeue", id), "requeued "+id)
	e2e.RequireProgress(t, d.DB, func() bool { return d.SMTP.CountTo(late.Email) == 1 }, e2e.EffectsTimeout,
		"the requeued email is sent")
	assert.Equal(t, "no poisoned messages\n", poisonCommand(t, d, "list"))
}
