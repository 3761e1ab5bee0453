package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/onboard/onboard/adapters"
)

const usage = "usage: onboard                       run the service\n" +
	"       onboard poison list           list poisoned messages\n" +
	"       onboard poison requeue ID     send one back to the handler that failed on it"

// runCommand runs an operator's subcommand, configured like the service.
func runCommand(cfg Config, args []string, out io.Writer) error {
	if len(args) < 2 || args[0] != "poison" {
		return errors.New(usage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*startTimeout)
	defer cancel()
	var db *sql.DB
	if cfg.PubSub == adapters.TransportSQL {
		var err error
		if db, err = adapters.OpenDatabase(ctx, cfg.DatabaseURL, slog.New(slog.DiscardHandler)); err != nil {
			return err
		}
		defer func() { _ = db.Close() }()
	}
	queue, err := adapters.NewPoisonQueue(cfg.PubSub, db, cfg.AMQPURL)
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
	return errors.New(usage)
}

func listPoisoned(ctx context.Context, queue adapters.PoisonQueue, out io.Writer) error {
	poisoned, err := queue.List(ctx)
	if err != nil {
		return err
	}
	if len(poisoned) == 0 {
		_, err := fmt.Fprintln(out, "no poisoned messages")
		return err
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "ID\tTOPIC\tHANDLER\tBYTES\tREASON")
	for _, p := range poisoned {
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", p.ID, p.Topic, p.Handler, p.Bytes, p.Reason)
	}
	return w.Flush()
}
