package mail

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/event"
)

// Failure classes of a send, the class label of onboard_emails_failed_total.
const (
	// FailureOutage: the server could not be reached or refused every
	// message alike (connect, 421, a refused sender); the message is held
	// and redelivered.
	FailureOutage = "outage"
	// FailureTransient: a 4xx to this message alone (greylisting, a full
	// mailbox); it waits in the retry queue.
	FailureTransient = "transient"
	// FailurePermanent: a 5xx, or an email that can never be sent.
	FailurePermanent = "permanent"
	// FailureInterrupted: the send was canceled, by a stop.
	FailureInterrupted = "interrupted"
)

// Metrics count the sends of a mailer.
type Metrics struct {
	sent   *prometheus.CounterVec
	failed *prometheus.CounterVec
}

// NewMetrics registers the mailers' series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onboard_emails_sent_total",
			Help: "Emails the mail server accepted (or the log took), by handler.",
		}, []string{"handler"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onboard_emails_failed_total",
			Help: "Failed sends of an email, by handler and class: outage, transient, permanent or interrupted.",
		}, []string{"handler", "class"}),
	}
	if err := errors.Join(reg.Register(m.sent), reg.Register(m.failed)); err != nil {
		return nil, err
	}
	return m, nil
}

// Counting returns mailer counting its sends in m, by the handler that
// sends (the message's handler, "none" outside one).
func (m *Metrics) Counting(mailer event.Mailer) event.Mailer {
	return countingMailer{Mailer: mailer, metrics: m}
}

type countingMailer struct {
	event.Mailer
	metrics *Metrics
}

func (c countingMailer) Send(ctx context.Context, msg event.Mail) error {
	err := c.Mailer.Send(ctx, msg)
	handler := message.HandlerNameFromCtx(ctx)
	if handler == "" {
		handler = "none"
	}
	if err == nil {
		c.metrics.sent.WithLabelValues(handler).Inc()
	} else {
		c.metrics.failed.WithLabelValues(handler, FailureClass(err)).Inc()
	}
	return err
}

// FailureClass is the class of a failed send.
func FailureClass(err error) string {
	var classified app.ClassifiedError
	switch {
	case errors.As(err, &classified) && classified.Failure() == app.FailureOutage:
		if errors.Is(err, context.Canceled) {
			return FailureInterrupted
		}
		return FailureOutage
	case errors.As(err, &classified) && classified.Failure() == app.FailureMessage:
		return FailureTransient
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return FailureInterrupted
	}
	return FailurePermanent
}
