package messages_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/ports/messages"
)

// outage is an error that says it is a dependency's outage, as the
// adapters' errors do: the only failure the router retries at once.
type outage string

func (e outage) Error() string      { return string(e) }
func (outage) Failure() app.Failure { return app.FailureOutage }

// A retry policy's zero fields take the defaults, so a test may shorten the
// waits alone; a policy that cannot back off is refused.
func TestRetryPolicy_Validate(t *testing.T) {
	for _, tt := range []struct {
		name   string
		policy messages.RetryPolicy
		ok     bool
	}{
		{"zero: the defaults", messages.RetryPolicy{}, true},
		{"the defaults", messages.DefaultRetryPolicy(), true},
		{"shorter waits", messages.RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond}, true},
		{"negative retries", messages.RetryPolicy{MaxRetries: -1}, false},
		{"negative first wait", messages.RetryPolicy{InitialInterval: -time.Second}, false},
		{"max wait under the first", messages.RetryPolicy{InitialInterval: time.Second, MaxInterval: time.Millisecond}, false},
		{"shrinking waits", messages.RetryPolicy{Multiplier: 0.5}, false},
		{"randomization over 1", messages.RetryPolicy{RandomizationFactor: 1.5}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, "retry policy")
			}
		})
	}
}

// runRouter runs router until the test ends, then calls stop (the
// service's stopping signal) and closes it; it returns once the router runs.
func runRouter(t *testing.T, router *message.Router, stop func()) {
	t.Helper()
	stopped := make(chan error, 1)
	go func() { stopped <- router.Run(context.Background()) }()
	t.Cleanup(func() {
		stop()
		assert.NoError(t, router.Close())
		assert.NoError(t, <-stopped)
	})
	select {
	case <-router.Running():
	case err := <-stopped:
		t.Fatalf("router stopped at start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("router did not start")
	}
}
