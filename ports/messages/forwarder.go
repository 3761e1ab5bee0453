package messages

import (
	"database/sql"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/telemetry"
)

// ForwarderConfig configures NewForwarder.
type ForwarderConfig struct {
	// DB holds the outbox; Wakeup (PostgreSQL only, may be nil) wakes its
	// subscriber at commit.
	DB     *sql.DB
	Wakeup *watermillsql.Wakeup
	// Transport receives the messages; DeploymentID marks them.
	Transport    *transport.Transport
	DeploymentID string
	Logger       *slog.Logger
	// Tracing makes a span of each publish, a child of the outbox's.
	Tracing telemetry.Tracing
}

// NewForwarder moves outbox rows to the transport, marking each message
// with the deployment's id, several at once (transport.NewOutboxSubscriber).
// It runs on a router of its own, started once every handler has
// subscribed.
func NewForwarder(cfg ForwarderConfig) (*forwarder.Forwarder, error) {
	wlogger := watermill.NewSlogLogger(cfg.Logger)
	outbox, err := transport.NewOutboxSubscriber(cfg.DB, cfg.Wakeup, wlogger)
	if err != nil {
		return nil, err
	}
	publisher := telemetry.TracePublisher(transport.StampOrigin(cfg.Transport.Publisher, cfg.DeploymentID), "forward", cfg.Tracing)
	return forwarder.NewForwarder(outbox, publisher, wlogger, forwarder.Config{
		ForwarderTopic: transport.OutboxTopic,
		CloseTimeout:   30 * time.Second,
	})
}
