// Package operator is onboard's command line: its help, and the operator's
// subcommands that list and requeue poisoned messages, list the retries,
// show and rebuild the read models, re-wrap the keys under a new master
// key, remove a namespace's resources from the transport, and check the
// health of a running service.
package operator

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/service"
)

// commandTimeout bounds a subcommand: connecting, then reading or requeueing.
const commandTimeout = 16 * time.Second

// Run runs the subcommand args (a Command line), configured like the
// service, writing its answer to out and the progress of a long one to
// progress.
func Run(ctx context.Context, cfg service.Config, args []string, out, progress io.Writer) error {
	if len(args) == 1 && args[0] == "healthcheck" {
		return healthcheck(ctx, cfg.HTTPAddr, out)
	}
	if len(args) < 2 || (args[0] != "poison" && args[0] != "retries" && args[0] != "projections" && args[0] != "keys" &&
		args[0] != "users" && args[0] != "transport") {
		return ErrUsage
	}
	openCtx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	// The database holds the retries and the read models, and names the
	// default namespace.
	db, err := sqldb.Open(openCtx, cfg.DatabaseURL, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	switch args[0] {
	case "projections":
		return runProjections(ctx, cfg, db, args, out)
	case "keys":
		if args[1] != "rotate" || len(args) != 2 {
			return ErrUsage
		}
		return rotateKeys(ctx, cfg, db, out, progress)
	case "users":
		return runUsers(openCtx, cfg, db, args, out)
	case "transport":
		return runTransport(ctx, cfg, db, args, out)
	}
	ctx = openCtx
	if args[0] == "retries" {
		if args[1] != "list" || len(args) != 2 {
			return ErrUsage
		}
		return listRetries(ctx, db, out)
	}
	namespace, err := service.DeploymentNamespace(ctx, cfg, db)
	if err != nil {
		return err
	}
	queue, err := transport.NewPoisonQueue(cfg.Transport(db, namespace))
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
	return ErrUsage
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
