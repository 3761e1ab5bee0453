package transport_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
)

func TestClassify(t *testing.T) {
	_, dialErr := net.Dial("tcp", "127.0.0.1:1")
	require.Error(t, dialErr)
	tests := []struct {
		name string
		err  error
		want app.Failure
	}{
		{"nil", nil, app.FailurePermanent},
		{"plain", errors.New("boom"), app.FailurePermanent},
		{"domain rejection", domain.ErrEmailTaken, app.FailurePermanent},
		{"canceled", fmt.Errorf("handle: %w", context.Canceled), app.FailureOutage},
		{"deadline", fmt.Errorf("handle: %w", context.DeadlineExceeded), app.FailureOutage},
		{"connection refused", fmt.Errorf("send: %w", dialErr), app.FailureOutage},
		{"overloaded hasher", fmt.Errorf("register: %w", command.ErrOverloaded), app.FailureOutage},
		{"NATS timeout", fmt.Errorf("publish: %w", nats.ErrTimeout), app.FailureOutage},
		{"NATS reconnecting", fmt.Errorf("publish: %w", nats.ErrConnectionReconnecting), app.FailureOutage},
		{"JetStream not answering", fmt.Errorf("publish: %w", jetstream.ErrNoStreamResponse), app.FailureOutage},
		{"NATS refusal", fmt.Errorf("publish: %w", nats.ErrBadSubject), app.FailurePermanent},
		{"greylisted", fmt.Errorf("send: %w", &mail.SMTPError{Step: "RCPT TO", Code: 451}), app.FailureMessage},
		{"no such user", fmt.Errorf("send: %w", &mail.SMTPError{Step: "RCPT TO", Code: 550}), app.FailurePermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, transport.Classify(tt.err), "%v", tt.err)
		})
	}
}
