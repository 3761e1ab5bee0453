package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/service"
)

// commandTimeout bounds a subcommand: connecting, then reading or requeueing.
const commandTimeout = 16 * time.Second

// variables are the environment variables the service and the operator
// commands read, with their defaults: the README's configuration table.
var variables = []struct{ name, meaning, fallback string }{
	{"PUBSUB", "the transport: gochannel, sql or amqp", service.DefaultPubSub},
	{"DATABASE_URL", "postgres://..., mysql://... (MariaDB 10.11+, MySQL 8) or sqlite:PATH", service.DefaultDatabaseURL},
	{"AMQP_URL", "RabbitMQ, when PUBSUB=amqp", service.DefaultAMQPURL},
	{"SMTP_URL", "smtp://[user:pass@]host:port or smtps://...; empty: emails go to the log", "empty"},
	{"MAIL_FROM", "sender address", service.DefaultMailFrom},
	{"HTTP_ADDR", "listen address", service.DefaultHTTPAddr},
	{"BCRYPT_COST", "bcrypt work factor, 10..14", "10"},
	{"SIGNUP_POINTS", "points granted on registration", "100"},
	{"RATE_LIMIT_REGISTRATIONS", "POST /users per client address: N/s, N/m or N/h, optionally ,burst=B; or off", "30/m,burst=10"},
	{"TRUSTED_PROXIES", "IP addresses and CIDR prefixes of the proxies whose X-Forwarded-For is read", "empty"},
	{"HASH_QUEUE_MAX", "registrations that may wait for a turn to hash, 1..100000", "64"},
	{"PUBSUB_NAMESPACE", "prefix of every topic, table, exchange and queue: 1-16 of a-z 0-9 -", "the database's own"},
	{"EMAIL_RETRY_MAX_AGE", "how long a message refused for itself alone is retried", "24h"},
	{"EMAIL_RETRY_FIRST_DELAY", "wait before its first retry, then twice as long each time, at most 1h", "1m"},
	{"LOG_LEVEL", "least level logged: debug, info, warn or error; libraries log at debug", "info"},
}

// usage is the help of the command line.
func usage() string {
	var b strings.Builder
	b.WriteString(`onboard registers users over HTTP and sends their welcome email and signup
points from events.

usage:
  onboard                       run the service
  onboard poison list           list poisoned messages
  onboard poison requeue ID     send one back to the handler that failed on it
  onboard retries list          list messages waiting for a later retry
  onboard help                  print this help (also -h, --help)

The subcommands read the same environment as the service.

environment:
`)
	for _, v := range variables {
		fmt.Fprintf(&b, "  %s (default: %s)\n      %s\n", v.name, v.fallback, v.meaning)
	}
	return b.String()
}

// errUsage is a command line onboard does not know.
var errUsage = errors.New("unknown command")

// commandKind is what a command line asks for.
type commandKind int

const (
	serve commandKind = iota
	printHelp
	runOperator
)

// parseArgs reads the command line, before any configuration: help never
// depends on the environment.
func parseArgs(args []string) (commandKind, error) {
	switch {
	case len(args) == 0:
		return serve, nil
	case args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		return printHelp, nil
	case len(args) == 2 && (args[0] == "poison" || args[0] == "retries") && args[1] == "list",
		len(args) == 3 && args[0] == "poison" && args[1] == "requeue":
		return runOperator, nil
	}
	return 0, fmt.Errorf("%w: %q", errUsage, strings.Join(args, " "))
}

// runCommand runs an operator's subcommand, configured like the service.
func runCommand(cfg service.Config, args []string, out io.Writer) error {
	if len(args) < 2 || (args[0] != "poison" && args[0] != "retries") {
		return errUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	// The database holds the retries and names the default namespace.
	db, err := sqldb.Open(ctx, cfg.DatabaseURL, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	if args[0] == "retries" {
		if args[1] != "list" || len(args) != 2 {
			return errUsage
		}
		return listRetries(ctx, db, out)
	}
	namespace, err := service.DeploymentNamespace(ctx, cfg, db)
	if err != nil {
		return err
	}
	queue, err := transport.NewPoisonQueue(transport.TransportConfig{
		Kind: cfg.PubSub, DB: db, AMQPURL: cfg.AMQPURL, Namespace: namespace,
	})
	if err != nil {
		return err
	}
	switch {
	case args[1] == "list" && len(args) == 2:
		return listPoisoned(ctx, queue, out)
	case args[1] == "requeue" && len(args) == 3:
		requeued, err := queue.Requeue(ctx, args[2])
		if err != nil {
			return fmt.Errorf("requeue %s: %w", args[2], err)
		}
		_, err = fmt.Fprintf(out, "requeued %s to %s for %s\n", requeued.ID, requeued.Topic, requeued.Handler)
		return err
	}
	return errUsage
}

func listPoisoned(ctx context.Context, queue transport.PoisonQueue, out io.Writer) error {
	poisoned, err := queue.List(ctx)
	if err != nil {
		return err
	}
	rows := make([][]string, len(poisoned))
	for i, p := range poisoned {
		rows[i] = []string{p.ID, p.MessageUUID, p.Topic, p.Handler, strconv.Itoa(p.Bytes), p.Reason}
	}
	return printTable(out, "no poisoned messages", []string{"ID", "MESSAGE", "TOPIC", "HANDLER", "BYTES", "REASON"}, rows)
}

// listRetries prints the messages waiting in the database for a retry.
func listRetries(ctx context.Context, db *sql.DB, out io.Writer) error {
	queue, err := transport.NewRetryQueue(transport.RetryQueueConfig{DB: db})
	if err != nil {
		return err
	}
	waiting, err := queue.List(ctx)
	if err != nil {
		return err
	}
	rows := make([][]string, len(waiting))
	for i, m := range waiting {
		rows[i] = []string{m.ID, m.Topic, m.Handler, strconv.Itoa(m.Attempts), m.FirstFailed.Format(time.RFC3339),
			m.NextAttempt.Format(time.RFC3339), strconv.Itoa(m.Bytes), m.Reason}
	}
	return printTable(out, "no messages waiting for a retry",
		[]string{"ID", "TOPIC", "HANDLER", "ATTEMPTS", "FIRST FAILURE", "NEXT ATTEMPT", "BYTES", "REASON"}, rows)
}

// printTable writes the rows in aligned columns under their header, or the
// line empty when there are none.
func printTable(out io.Writer, empty string, header []string, rows [][]string) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintln(out, empty)
		return err
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, row := range append([][]string{header}, rows...) {
		_, _ = fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	return w.Flush()
}
