package operator

import (
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/onboard/onboard/service"
)

// Usage is the help of the command line.
func Usage() string {
	var b strings.Builder
	b.WriteString(`onboard registers users over HTTP and sends their welcome email and signup
points from events.

usage:
  onboard                       run the service
  onboard poison list           list poisoned messages
  onboard poison requeue ID     send one back to the handler that failed on it
  onboard retries list          list messages waiting for a later retry
  onboard projections status    each read model's checkpoint and lag
  onboard projections rebuild users
                                replay the events into a new users table and
                                swap it in, while the service runs
  onboard users export ID       print everything kept of the user, decrypted,
                                as JSON (GET /users/{id}/export)
  onboard keys rotate           re-wrap every key not under the current master
                                key (the first of MASTER_KEYS) under it
  onboard transport teardown [-force]
                                remove what the deployment's PUBSUB_NAMESPACE
                                holds on PUBSUB (queues, exchanges, streams,
                                topics, tables) with the messages in them, and
                                print what it removed; run it with the
                                service stopped: it refuses while a consumer
                                is connected (amqp, nats, redis), unless -force
  onboard healthcheck           GET /healthz of the service on this host
                                (HTTP_ADDR's port): exit 0 on 200, else 1
  onboard version               print the build's version
  onboard help                  print this help (also -h, --help)

The subcommands read the same environment as the service. MASTER_KEY (or
MASTER_KEYS, to rotate it) wraps the keys the service keeps in its
database: PostgreSQL and MySQL need it; on sqlite: without it, the service
makes master.key beside the database file and reads it at every start.

environment:
`)
	for _, v := range service.Variables {
		fmt.Fprintf(&b, "  %s (default: %s)\n      %s\n", v.Name, v.Default, v.Meaning)
	}
	return b.String()
}

// UsageFor is the help for a command line onboard does not know: the
// lines of its command's subcommands when it names a known command (such
// as "onboard poison" alone), else the whole Usage.
func UsageFor(args []string) string {
	if len(args) == 0 {
		return Usage()
	}
	lines := strings.Split(Usage(), "\n")
	start := slices.Index(lines, "usage:")
	var matched []string
	inCommand := false
	for _, line := range lines[start+1:] {
		if line == "" {
			break
		}
		if strings.HasPrefix(line, "  onboard ") { // a command; else the next line of one's description
			inCommand = strings.HasPrefix(line, "  onboard "+args[0]+" ")
		}
		if inCommand {
			matched = append(matched, line)
		}
	}
	if len(matched) == 0 {
		return Usage()
	}
	return "usage:\n" + strings.Join(matched, "\n") + "\n"
}

// ErrUsage is a command line onboard does not know.
var ErrUsage = errors.New("unknown command")

// Kind is what a command line asks for.
type Kind int

const (
	Serve   Kind = iota // run the service
	Help                // print Usage
	Version             // print BuildVersion
	Command             // an operator's subcommand: Run
)

// ParseArgs reads the command line (without the program's name), before
// any configuration: help never depends on the environment.
func ParseArgs(args []string) (Kind, error) {
	switch {
	case len(args) == 0:
		return Serve, nil
	case args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		return Help, nil
	case len(args) == 1 && (args[0] == "version" || args[0] == "--version"):
		return Version, nil
	case len(args) == 2 && (args[0] == "poison" || args[0] == "retries") && args[1] == "list",
		len(args) == 3 && args[0] == "poison" && args[1] == "requeue",
		len(args) == 2 && args[0] == "projections" && args[1] == "status",
		len(args) == 1 && args[0] == "healthcheck",
		len(args) == 3 && args[0] == "projections" && args[1] == "rebuild" && args[2] == "users",
		len(args) == 2 && args[0] == "keys" && args[1] == "rotate",
		len(args) == 3 && args[0] == "users" && args[1] == "export":
		return Command, nil
	}
	if _, ok := teardownArgs(args); ok {
		return Command, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrUsage, strings.Join(args, " "))
}

// BuildVersion describes the build: the module's version, the commit it
// was built from (and whether the tree had changes), and the Go version.
func BuildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "onboard (no build information)\n"
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	version := "onboard " + info.Main.Version
	if commit := settings["vcs.revision"]; commit != "" {
		version += " commit " + commit[:min(12, len(commit))]
		if settings["vcs.modified"] == "true" {
			version += "+changes"
		}
		if at := settings["vcs.time"]; at != "" {
			version += " " + at
		}
	}
	return version + " " + info.GoVersion + "\n"
}
