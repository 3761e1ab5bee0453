// Command app runs onboard: the HTTP API, the event handlers and the outbox
// forwarder, configured by environment variables.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/onboard/onboard/service"
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
	cfg, err := service.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	if kind == runOperator {
		return runCommand(cfg, os.Args[1:], os.Stdout)
	}
	cfg.HashConcurrency = spareProcessors()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	svc, err := service.NewService(ctx, cfg, nil, service.NewLogger(os.Stdout, cfg.LogLevel))
	if err != nil {
		return err
	}
	return svc.Run(ctx)
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
