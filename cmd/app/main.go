// Command app runs onboard: the HTTP API, the event handlers and the outbox
// forwarder, configured by environment variables.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/onboard/onboard/app"
)

func main() {
	if err := run(); err != nil {
		// One line, whatever the number of problems.
		fmt.Fprintln(os.Stderr, "onboard:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

func run() error {
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	if len(os.Args) > 1 {
		return runCommand(cfg, os.Args[1:], os.Stdout)
	}
	logger := slog.New(app.LogHandler{Handler: slog.NewJSONHandler(os.Stdout, nil)})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	svc, err := NewService(ctx, cfg, nil, logger)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
