package operator

import (
	"context"
	"database/sql"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/ports"
	"github.com/onboard/onboard/service"
)

// runUsers runs `users export ID`: the user's export, as GET
// /users/{id}/export gives it, on out.
func runUsers(ctx context.Context, cfg service.Config, db *sql.DB, args []string, out io.Writer) error {
	if len(args) != 3 || args[1] != "export" {
		return ErrUsage
	}
	id, err := uuid.Parse(args[2])
	if err != nil {
		return fmt.Errorf("users export: %q is not a user id (a UUID)", args[2])
	}
	users, err := service.OpenUserStore(ctx, cfg, db)
	if err != nil {
		return err
	}
	export, err := query.NewExportUserHandler(users.ReadModel(), users, adapters.NewPointsLedger(db)).Handle(ctx, id.String())
	if err != nil {
		return fmt.Errorf("users export %s: %w", id, err)
	}
	doc, err := ports.MarshalUserExport(export)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", doc)
	return err
}
