// Package messages is onboard's inbound port for messages: the Watermill
// router of the event and command handlers, its middleware, the event and
// command processors, and the forwarder that moves the outbox to the
// transport.
package messages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/telemetry"
)

// UserHolder tells whether this deployment's database holds a user.
type UserHolder interface {
	HoldsUser(ctx context.Context, id string) (bool, error)
}

// RouterConfig configures the handlers' router.
type RouterConfig struct {
	Transport *transport.Transport
	// Retries takes the failures of one message off its queue.
	Retries *transport.RetryQueue
	// Users and DeploymentID tell this deployment's events from another's.
	Users        UserHolder
	DeploymentID string
	// Events are the events this build reads. A handler gets its event
	// as stored, its personal fields sealed, and its message's id as
	// app.EventID of its context: a handler that reads those fields opens
	// them itself (event.Claim), and an error wrapping
	// domain.ErrUserErased from it acks the message unhandled.
	Events domain.Registry
	// Stopping ends when the service stops: handlers in flight give up,
	// and their messages are redelivered later.
	Stopping context.Context
	// Logger takes the handlers' lines; WatermillLogger (Logger when nil)
	// takes Watermill's own.
	Logger          *slog.Logger
	WatermillLogger *slog.Logger
	// Retry is the quick retries of one delivery; a field left zero takes
	// DefaultRetryPolicy's value.
	Retry RetryPolicy
	// Metrics takes Watermill's series of the handlers; nil: none.
	Metrics *telemetry.Metrics
	// Tracing makes a span of each attempt, a child of the publisher's.
	Tracing telemetry.Tracing
}

// RetryPolicy is how often, and after which waits, one delivery is retried
// at once (in the handler's goroutine) through an outage before its message
// is nacked. Only an outage is retried here: a failure of the message alone
// goes to the retry queue, and one that will never pass to the poison queue,
// each after one attempt, so that no other message waits behind it.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first attempt.
	MaxRetries int
	// InitialInterval is the first wait; each next one is Multiplier times
	// longer, up to MaxInterval, give or take RandomizationFactor of it.
	InitialInterval     time.Duration
	MaxInterval         time.Duration
	Multiplier          float64
	RandomizationFactor float64
}

// DefaultRetryPolicy is about 5 s of retries per delivery: long enough for
// a dependency's blip, short enough not to hold a queue.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxRetries:          6,
		InitialInterval:     100 * time.Millisecond,
		MaxInterval:         2 * time.Second,
		Multiplier:          2,
		RandomizationFactor: 0.2,
	}
}

func (c *RouterConfig) setDefaults() {
	if c.WatermillLogger == nil {
		c.WatermillLogger = c.Logger
	}
	c.Retry.setDefaults()
}

func (r *RetryPolicy) setDefaults() {
	d := DefaultRetryPolicy()
	if r.MaxRetries == 0 {
		r.MaxRetries = d.MaxRetries
	}
	if r.InitialInterval == 0 {
		r.InitialInterval = d.InitialInterval
	}
	if r.MaxInterval == 0 {
		r.MaxInterval = d.MaxInterval
	}
	if r.Multiplier == 0 {
		r.Multiplier = d.Multiplier
	}
	if r.RandomizationFactor == 0 {
		r.RandomizationFactor = d.RandomizationFactor
	}
}

// Validate returns every problem at once.
func (c RouterConfig) Validate() error {
	var errs []error
	if c.Transport == nil || c.Retries == nil || c.Users == nil || c.Stopping == nil || c.Logger == nil {
		errs = append(errs, errors.New("messages: the router needs a transport, a retry queue, users, a stop and a logger"))
	}
	if c.DeploymentID == "" {
		errs = append(errs, errors.New("messages: the router needs the deployment's id"))
	}
	if err := c.Retry.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Validate checks the policy, its zero fields taken as their defaults.
func (r RetryPolicy) Validate() error {
	r.setDefaults()
	if r.MaxRetries < 0 || r.InitialInterval <= 0 || r.MaxInterval < r.InitialInterval ||
		r.Multiplier < 1 || r.RandomizationFactor < 0 || r.RandomizationFactor > 1 {
		return fmt.Errorf("messages: bad retry policy %+v: want retries > 0, 0 < initial interval <= max interval, "+
			"multiplier >= 1 and a randomization factor in [0, 1]", r)
	}
	return nil
}

// port is the router's middleware and hooks, on its configuration.
type port struct{ cfg RouterConfig }

// NewRouter runs the event and command handlers, each on its own consumer
// group, behind the middleware, outermost first: the message counted as
// held by its handler (for the backlog), the handler's context ended by
// the stop, the trace the message carries taken up, a message redelivered
// for another handler skipped, correlation id carried to produced
// messages, poison queue for what will never pass, the retry queue for
// what failed for itself alone (off the head of the queue), quick retries
// with backoff of an outage alone, a span and one log line per attempt
// (with the correlation and trace ids), panic recovery.
func NewRouter(cfg RouterConfig, eventHandlers []cqrs.EventHandler, commandHandlers []cqrs.CommandHandler) (*message.Router, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := port{cfg: cfg}
	wlogger := watermill.NewSlogLogger(cfg.WatermillLogger)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, wlogger)
	if err != nil {
		return nil, err
	}
	// An outage (SMTP or database down) is not poisoned: the message is
	// nacked and redelivered, and retried again, until it passes.
	poisonPublisher := telemetry.TracePublisher(cfg.Transport.Publisher, "poison publish", cfg.Tracing)
	poison, err := middleware.PoisonQueueWithFilter(transport.UniquePoisonIDs(poisonPublisher), transport.PoisonTopic,
		func(err error) bool { return transport.Classify(err) == app.FailurePermanent })
	if err != nil {
		return nil, err
	}
	measure := cfg.Metrics.InstrumentRouter(router, cfg.Retry.MaxTotalWait())
	router.AddMiddleware(
		cfg.Transport.HoldMiddleware,
		p.abortOnStop,
		cfg.Tracing.ContinueTrace,
		transport.ForNamedHandler,
		middleware.CorrelationID,
		poison,
		cfg.Retries.Middleware,
		measure, // a delivery's time, its quick retries included
		// Quick retries for an outage alone. A failure of this message
		// alone waits minutes in the retry queue, not seconds here; one that
		// will never pass (an SMTP 5xx to its recipient, a malformed
		// message) is poisoned at once: either, retried here, would hold
		// every message behind it for seconds.
		middleware.Retry{
			MaxRetries:          cfg.Retry.MaxRetries,
			InitialInterval:     cfg.Retry.InitialInterval,
			MaxInterval:         cfg.Retry.MaxInterval,
			Multiplier:          cfg.Retry.Multiplier,
			RandomizationFactor: cfg.Retry.RandomizationFactor,
			ShouldRetry: func(p middleware.RetryParams) bool {
				return transport.Classify(p.Err) == app.FailureOutage
			},
		}.Middleware,
		cfg.Tracing.TraceAttempts,
		logMessages(cfg.Logger, func() bool { return cfg.Stopping.Err() != nil }),
		middleware.Recoverer,
	)

	marshaler := transport.NewMarshaler(cfg.Events)
	eventProcessor, err := cqrs.NewEventProcessorWithConfig(router, cqrs.EventProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.EventProcessorGenerateSubscribeTopicParams) (string, error) {
			return transport.EventTopic(p.EventName), nil
		},
		SubscriberConstructor: func(p cqrs.EventProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return cfg.Transport.Subscriber(p.HandlerName, transport.EventTopic(p.EventName))
		},
		OnHandle: func(h cqrs.EventProcessorOnHandleParams) error {
			if err := transport.CheckSchemaVersion(cfg.Events, h.EventName, h.Message); err != nil {
				return err
			}
			if err := p.checkUserHeld(h.Message, h.EventName, h.Event); err != nil {
				return err
			}
			return p.ackErasedUsers(h, h.Handler.Handle(app.WithEventID(h.Message.Context(), h.Message.UUID), h.Event))
		},
		Marshaler: marshaler,
		Logger:    wlogger,
	})
	if err != nil {
		return nil, err
	}
	if err := eventProcessor.AddHandlers(eventHandlers...); err != nil {
		return nil, err
	}

	commandProcessor, err := cqrs.NewCommandProcessorWithConfig(router, cqrs.CommandProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.CommandProcessorGenerateSubscribeTopicParams) (string, error) {
			return transport.CommandTopic(p.CommandName), nil
		},
		SubscriberConstructor: func(p cqrs.CommandProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return cfg.Transport.Subscriber(p.HandlerName, transport.CommandTopic(p.CommandName))
		},
		OnHandle:  p.ackRejectedCommands,
		Marshaler: marshaler,
		Logger:    wlogger,
	})
	if err != nil {
		return nil, err
	}
	return router, commandProcessor.AddHandlers(commandHandlers...)
}

// checkUserHeld refuses an event about a user this deployment's database
// does not hold: one published by a second deployment on the same broker
// and namespace, whose users are not ours to email or credit. An event
// from our own outbox carries our deployment id, and needs no query; one
// without an origin is looked up. The refusal is permanent, so the event is
// poisoned with this reason.
func (p port) checkUserHeld(msg *message.Message, eventName string, e any) error {
	about, ok := e.(interface{ StreamID() string })
	if !ok || about.StreamID() == "" {
		return nil // the handler rejects an event without a user id
	}
	origin := msg.Metadata.Get(transport.OriginKey)
	if origin == p.cfg.DeploymentID {
		return nil
	}
	if origin == "" {
		held, err := p.cfg.Users.HoldsUser(msg.Context(), about.StreamID())
		if err != nil || held {
			return err
		}
	}
	return fmt.Errorf("%s for user %s, whom this deployment's database does not hold (published by deployment %q): "+
		"another deployment publishes on the same broker and PUBSUB_NAMESPACE", eventName, about.StreamID(), origin)
}

// ackErasedUsers takes the handler's error for an event of an erased
// user, whose key is gone, as handled: the message is acked, with a line
// naming the user by id, and not poisoned, so that an email waiting for
// that user is never sent. Any other error is kept.
func (p port) ackErasedUsers(h cqrs.EventProcessorOnHandleParams, err error) error {
	event, ok := h.Event.(domain.Event)
	if !ok || !errors.Is(err, domain.ErrUserErased) {
		return err
	}
	ctx := h.Message.Context()
	p.cfg.Logger.InfoContext(ctx, "event of an erased user acked unhandled: its key is gone",
		"handler", message.HandlerNameFromCtx(ctx), "event", h.EventName, "message_uuid", h.Message.UUID,
		"user_id", event.StreamID())
	return nil
}

// abortOnStop cancels the message's context when the service stops, so a
// handler retrying a failing dependency does not hold up the stop; the
// failure is transient, so the message is not poisoned but redelivered.
func (p port) abortOnStop(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx, cancel := context.WithCancel(msg.Context())
		defer cancel()
		defer context.AfterFunc(p.cfg.Stopping, cancel)()
		msg.SetContext(ctx)
		return next(msg)
	}
}

// ackRejectedCommands logs a command the domain rejects and acks it: a
// retry would be rejected again. Other errors are retried.
func (p port) ackRejectedCommands(h cqrs.CommandProcessorOnHandleParams) error {
	ctx := h.Message.Context()
	err := h.Handler.Handle(ctx, h.Command)
	var rejected *domain.Error
	if errors.As(err, &rejected) {
		p.cfg.Logger.WarnContext(ctx, "command rejected", "command", h.CommandName,
			"message_uuid", h.Message.UUID, "code", rejected.Code, "reason", rejected.Error())
		return nil
	}
	return err
}

// logMessages puts the message's correlation id (and client request id) in
// its context and logs one line per handled message with the handler's
// name, duration and error. A handler canceled by the stop has not failed:
// its message comes again.
func logMessages(logger *slog.Logger, stopping func() bool) message.HandlerMiddleware {
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := app.WithCorrelationID(msg.Context(), middleware.MessageCorrelationID(msg))
			ctx = app.WithClientRequestID(ctx, msg.Metadata.Get(transport.ClientRequestIDKey))
			msg.SetContext(ctx)
			start := time.Now()
			produced, err := next(msg)
			attrs := []any{
				"handler", message.HandlerNameFromCtx(ctx),
				"message_uuid", msg.UUID,
				"duration", time.Since(start),
			}
			switch {
			case err == nil:
				logger.InfoContext(ctx, "message handled", attrs...)
			case errors.Is(err, context.Canceled) && stopping():
				logger.InfoContext(ctx, "message interrupted by the stop", append(attrs, "error", err)...)
			default:
				logger.ErrorContext(ctx, "message failed", append(attrs, "error", err)...)
			}
			return produced, err
		}
	}
}
