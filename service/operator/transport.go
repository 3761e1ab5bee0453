package operator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/ports/messages"
	"github.com/onboard/onboard/service"
)

// teardownTimeout bounds `transport teardown`: a call or two per resource
// of the namespace, some dozens of them.
const teardownTimeout = 2 * time.Minute

// teardownArgs reads `transport teardown [-force]`.
func teardownArgs(args []string) (force, ok bool) {
	switch {
	case len(args) == 2 && args[0] == "transport" && args[1] == "teardown":
		return false, true
	case len(args) == 3 && args[0] == "transport" && args[1] == "teardown" && (args[2] == "-force" || args[2] == "--force"):
		return true, true
	}
	return false, false
}

// runTransport runs `transport teardown [-force]`: it removes what the
// deployment's namespace holds on the configured transport, and prints
// what it removed, kind by kind, even when it fails part way.
func runTransport(ctx context.Context, cfg service.Config, db *sql.DB, args []string, out io.Writer) error {
	force, ok := teardownArgs(args)
	if !ok {
		return ErrUsage
	}
	ctx, cancel := context.WithTimeout(ctx, teardownTimeout)
	defer cancel()
	if cfg.PubSub == transport.KindGoChannel {
		_, err := fmt.Fprintln(out, "PUBSUB=gochannel keeps its messages in the service's memory alone: nothing to remove")
		return err
	}
	namespace, err := service.DeploymentNamespace(ctx, cfg, db)
	if err != nil {
		return err
	}
	removed, err := transport.Teardown(ctx, cfg.Transport(db, namespace),
		transport.TeardownOptions{Topology: messages.Topology(), Force: force})
	if printErr := printRemoved(out, namespace, cfg.PubSub, removed, err == nil); printErr != nil && err == nil {
		err = printErr
	}
	if errors.Is(err, transport.ErrNamespaceInUse) {
		return fmt.Errorf("transport teardown of namespace %s removed nothing: %w; stop every service of the "+
			"namespace first, or add -force to remove its resources anyway", namespace, err)
	}
	if err != nil {
		return fmt.Errorf("transport teardown of namespace %s: %w", namespace, err)
	}
	return nil
}

// printRemoved writes a line per kind of resource with their count, then
// a line per resource; or, when the teardown is done and removed nothing,
// one line that says so.
func printRemoved(out io.Writer, namespace, pubsub string, removed []transport.RemovedResources, done bool) error {
	total := 0
	for _, r := range removed {
		total += len(r.Names)
	}
	if total == 0 {
		if !done {
			return nil
		}
		_, err := fmt.Fprintf(out, "namespace %s holds nothing on PUBSUB=%s: nothing to remove\n", namespace, pubsub)
		return err
	}
	_, err := fmt.Fprintf(out, "removed from namespace %s on PUBSUB=%s:\n", namespace, pubsub)
	for _, r := range removed {
		if err == nil {
			_, err = fmt.Fprintf(out, "  %s: %d\n", r.Kind, len(r.Names))
		}
		for _, name := range r.Names {
			if err == nil {
				_, err = fmt.Fprintf(out, "    %s\n", name)
			}
		}
	}
	return err
}
