// Command app runs onboard: the HTTP API, the event handlers and the outbox
// forwarder, configured by environment variables.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/onboard/onboard/app"
)

func main() {
	kind, err := parseArgs(os.Args[1:])
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "onboard: %v\n\n%s", err, usage())
		os.Exit(2)
	case kind == printHelp:
		fmt.Print(usage())
		return
	}
	if err := run(kind); err != nil {
		// One line, whatever the number of problems.
		fmt.Fprintln(os.Stderr, "onboard:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

func run(kind commandKind) error {
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	if kind == runOperator {
		return runCommand(cfg, os.Args[1:], os.Stdout)
	}
	cfg.HashConcurrency = spareProcessors()
	logger := slog.New(app.LogHandler{Handler: slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		Level:       cfg.LogLevel,
		ReplaceAttr: durationsInMilliseconds,
	})})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	svc, err := NewService(ctx, cfg, nil, logger)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

// durationsInMilliseconds logs every duration as a number of milliseconds,
// its name ending in _ms: "duration" becomes "duration_ms": 12.345.
func durationsInMilliseconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key+"_ms", float64(a.Value.Duration().Microseconds())/1000)
	}
	return a
}

// spareProcessors doubles the runtime's processors and returns how many
// there were, the passwords to hash at a time. bcrypt keeps a processor
// busy for a whole hash; were every processor hashing, a request would wait
// for the scheduler's 10 ms time slice before it ran. With processors to
// spare, the operating system shares the cores, and an answer that needs
// no hash (a 429, a read) runs as soon as it is ready.
func spareProcessors() int {
	cores := runtime.GOMAXPROCS(0) // GOMAXPROCS, or the CPUs this process may use
	runtime.GOMAXPROCS(2 * cores)
	return cores
}
