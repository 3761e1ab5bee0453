package operator

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/onboard/onboard/adapters/userdb"
	"github.com/onboard/onboard/service"
)

// progressEvery spaces a rebuild's progress lines.
const progressEvery = time.Second

// runProjections runs `projections status` and `projections rebuild
// users`. A rebuild has no time limit but its context's.
func runProjections(ctx context.Context, cfg service.Config, db *sql.DB, args []string, out io.Writer) error {
	users, err := service.OpenUserStore(ctx, cfg, db)
	if err != nil {
		return err
	}
	readModel := users.ReadModel()
	switch {
	case len(args) == 2 && args[1] == "status":
		status, err := readModel.Status(ctx)
		if err != nil {
			return err
		}
		return printTable(out, "", []string{"PROJECTION", "CHECKPOINT", "HEAD", "LAG EVENTS", "LAG SECONDS"},
			[][]string{{status.Name, strconv.FormatInt(status.Checkpoint, 10), strconv.FormatInt(status.Head, 10),
				strconv.Itoa(status.LagEvents), strconv.FormatFloat(status.LagSeconds, 'f', 1, 64)}})
	case len(args) == 3 && args[1] == "rebuild" && args[2] == userdb.UsersTable:
		var last time.Time
		done, err := readModel.Rebuild(ctx, func(p userdb.RebuildProgress) {
			if time.Since(last) < progressEvery {
				return
			}
			last = time.Now()
			_, _ = fmt.Fprintf(out, "users: position %d of %d, %d events, %.0f events/s, ETA %s\n",
				p.Position, p.Head, p.Events, p.EventsPerSecond(), p.Remaining().Round(time.Second))
		})
		if err != nil {
			return fmt.Errorf("rebuild users: %w", err)
		}
		_, err = fmt.Fprintf(out, "users rebuilt: %d users from %d events in %s (%.0f events/s)\n",
			done.Users, done.Events, done.Elapsed.Round(time.Millisecond), done.EventsPerSecond())
		return err
	}
	return ErrUsage
}
