package main

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// metricsWait covers a delivery's quick retries (about 5 s) and the retry
// queue's first two delays (2 s, then 4 s, each up to a fifth longer).
const metricsWait = 30 * time.Second

// TestE2E_Metrics: after 20 registrations /metrics shows 20 welcome emails,
// 20 grants, the POST /users histogram at 20 and every backlog at 0, and
// promlint finds nothing to say. Greylisted recipients then wait in the
// retry queue, whose count and oldest age grow, and leave it once
// accepted. An SMTP outage then holds the emails for the handler (on sql
// on its queue, on amqp and nats unacked by its consumers, on redis
// pending in its group, on googlecloud held by its handlers): its backlog
// and oldest age grow until the server is back, and fall to 0 after. The scrapes go to METRICS_ADDR's listener: on
// PostgreSQL the API's serves no /metrics.
func TestE2E_Metrics(t *testing.T) {
	t.Parallel()
	for _, pubsub := range []string{transport.KindSQL, transport.KindAMQP, transport.KindNATS,
		transport.KindRedis, transport.KindGoogleCloud, transport.KindSQS} {
		t.Run(pubsub, func(t *testing.T) {
			t.Parallel()
			d := e2e.Deploy(t, e2e.Config{PubSub: pubsub, Database: testenv.PostgresDatabase, SMTP: true,
				Vars: map[string]string{"EMAIL_RETRY_FIRST_DELAY": "2s", "METRICS_ADDR": "127.0.0.1:0"}})
			proc, api := d.Serve(t)
			metrics := proc.MetricsClient(t)
			run := e2e.RunID()
			const welcome = event.SendWelcomeEmailName
			scrape := func() e2e.Scrape {
				m, err := metrics.Metrics()
				require.NoError(t, err)
				return m
			}
			var m e2e.Scrape
			waitFor := func(what string, condition func(m e2e.Scrape) bool) {
				t.Helper()
				require.Eventually(t, func() bool { m = scrape(); return condition(m) }, metricsWait, e2e.Poll, what)
			}
			registerAll := func(users []e2e.User) {
				for _, u := range users {
					api.MustRegister(t, u)
				}
			}

			registerAll(newUsers("metrics", run, 20))
			// A handler's execution time is observed once it has returned,
			// after its grant counted: it is waited for too.
			handled := func(m e2e.Scrape) float64 {
				return m.Value("onboard_handler_execution_time_seconds_count",
					"handler_name", event.SeedSignupPointsName, "success", "true")
			}
			waitFor("20 emails, 20 grants, nothing waiting", func(m e2e.Scrape) bool {
				return m.Value("onboard_emails_sent_total", "handler", welcome) == 20 &&
					m.Value("onboard_points_grants_total", "reason", "signup") == 20 &&
					handled(m) >= 20 && nothingWaits(m, pubsub)
			})
			assert.Equal(t, 20.0, m.Value("onboard_http_request_duration_seconds_count", "route", "/users", "method", "POST"))
			assert.Equal(t, 20.0, m.Value("onboard_registrations_total", "outcome", "created"))
			assert.Equal(t, 20.0, handled(m))
			assert.Equal(t, 1.0, m.Value("onboard_build_info", "transport", pubsub, "database", "postgres"))
			assert.Equal(t, 7, m.Count("onboard_handler_backlog_messages"), "one per handler, the command's included")
			problems, err := promlint.New(strings.NewReader(m.Text)).Lint()
			require.NoError(t, err)
			assert.Empty(t, problems, "promtool check metrics")

			// Refused for themselves alone: they wait in the retry queue.
			grey := newUsers("metricsgrey", run, 3)
			d.SMTP.Greylist(emailsOfUsers(grey)...)
			registerAll(grey)
			waitFor("3 in the retry queue", func(m e2e.Scrape) bool {
				return m.Value("onboard_retry_queue_messages", "handler", welcome) == 3
			})
			firstAge := m.Value("onboard_retry_queue_oldest_age_seconds", "handler", welcome)
			waitFor("the oldest grows older", func(m e2e.Scrape) bool {
				return m.Value("onboard_retry_queue_oldest_age_seconds", "handler", welcome) > firstAge+1
			})
			d.SMTP.Ungreylist(emailsOfUsers(grey)...)
			waitFor("the retry queue empties", func(m e2e.Scrape) bool {
				return m.Value("onboard_emails_sent_total", "handler", welcome) == 23 && nothingWaits(m, pubsub)
			})
			assert.GreaterOrEqual(t, m.Value("onboard_emails_failed_total", "handler", welcome, "class", "transient"), 3.0)

			// An outage: the emails wait for the handler.
			d.SMTP.SetFailing(true)
			registerAll(newUsers("metricsdown", run, 3))
			waitFor("3 waiting for the handler, the oldest growing older", func(m e2e.Scrape) bool {
				return m.Value("onboard_handler_backlog_messages", "handler", welcome) == 3 &&
					m.Value("onboard_handler_backlog_oldest_age_seconds", "handler", welcome) > 1
			})
			assert.Positive(t, m.Value("onboard_emails_failed_total", "handler", welcome, "class", "outage"))
			d.SMTP.SetFailing(false)
			waitFor("the queue drains once the server is back", func(m e2e.Scrape) bool {
				return m.Value("onboard_emails_sent_total", "handler", welcome) == 26 && nothingWaits(m, pubsub)
			})
			assert.Zero(t, m.Value("onboard_handler_backlog_oldest_age_seconds", "handler", welcome))
		})
	}
}

// nothingWaits: the outbox, every handler's queue, the retry queue and
// the poison queue (but on googlecloud, which reports none) are empty,
// and every source was read.
func nothingWaits(m e2e.Scrape, pubsub string) bool {
	names := []string{"onboard_outbox_pending_messages", "onboard_outbox_oldest_age_seconds",
		"onboard_handler_backlog_messages", "onboard_retry_queue_messages", "onboard_retry_queue_oldest_age_seconds"}
	sources := 3.0
	if pubsub == transport.KindGoogleCloud {
		// Pub/Sub counts a subscription's messages in Cloud Monitoring only.
		if _, found := m.Sum("onboard_poison_queue_messages"); found {
			return false
		}
	} else {
		names, sources = append(names, "onboard_poison_queue_messages"), 4
	}
	for _, name := range names {
		if v, found := m.Sum(name); !found || v != 0 {
			return false
		}
	}
	return m.Value("onboard_backlog_up") == sources
}

func emailsOfUsers(users []e2e.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.Email
	}
	return out
}
