// Command app runs onboard: the HTTP API, the event handlers and the outbox
// forwarder, configured by environment variables (service.LoadConfig), or
// one of the operator's subcommands (operator.Run).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/onboard/onboard/service"
	"github.com/onboard/onboard/service/operator"
)

func main() {
	args := os.Args[1:]
	kind, err := operator.ParseArgs(args)
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "onboard: %v\n\n%s", err, operator.UsageFor(args))
		os.Exit(2)
	case kind == operator.Help:
		fmt.Print(operator.Usage())
		return
	case kind == operator.Version:
		fmt.Print(operator.BuildVersion())
		return
	}
	if err := run(kind, args); err != nil {
		// One line, whatever the number of problems.
		fmt.Fprintln(os.Stderr, "onboard:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

// run loads the configuration, then runs the service or the subcommand
// until it ends or a signal stops it.
func run(kind operator.Kind, args []string) error {
	cfg, err := service.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if kind == operator.Command {
		return operator.Run(ctx, cfg, args, os.Stdout, os.Stderr)
	}
	cfg.HashConcurrency = doubleProcessors()
	collectSooner()
	svc, err := service.New(ctx, cfg, nil, service.NewLogger(os.Stdout, cfg.LogLevel))
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

// serviceGCPercent is the collector's GOGC in the service: a collection
// starts when the heap has grown by half of what the last one left live,
// where Go's default waits for it to double. Under load the heap then
// peaks about 5 MiB lower, for about half a millisecond more CPU per
// registration (docs/performance.md, "At a million stored users").
const serviceGCPercent = 50

// collectSooner sets serviceGCPercent, unless GOGC says otherwise.
func collectSooner() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serviceGCPercent)
	}
}

// doubleProcessors doubles the runtime's processors and returns how many
// there were, the passwords to hash at a time. bcrypt keeps a processor
// busy for a whole hash; were every processor hashing, a request would wait
// for the scheduler's 10 ms time slice before it ran. With processors to
// spare, the operating system shares the cores, and an answer that needs
// no hash (a 429, a read) runs as soon as it is ready.
func doubleProcessors() int {
	cores := runtime.GOMAXPROCS(0) // GOMAXPROCS, or the CPUs this process may use
	runtime.GOMAXPROCS(2 * cores)
	return cores
}
