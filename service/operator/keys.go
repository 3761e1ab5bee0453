package operator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/service"
)

// rotateKeys runs `keys rotate`: it re-wraps every key of the database
// not wrapped under the current master key (the first of MASTER_KEYS)
// under it, with a progress line per batch, then sums up. It has no time
// limit but its context's, and may run again, or on several hosts at once.
func rotateKeys(ctx context.Context, cfg service.Config, db *sql.DB, out, progress io.Writer) error {
	keys, err := service.OpenMasterKeys(ctx, cfg, db)
	if err != nil {
		return err
	}
	current := keys.Current().ID()
	done, err := secrets.RotateMasterKey(ctx, secrets.MasterKeyRotationConfig{DB: db, MasterKeys: keys,
		Progress: func(p secrets.RotationProgress) {
			_, _ = fmt.Fprintf(progress, "keys rotate: %d of %d keys re-wrapped under master key %s (%s), %s elapsed\n",
				p.Done, p.Total, current, p.Table, p.Elapsed.Round(time.Millisecond))
		}})
	if errors.Is(err, secrets.ErrRotationIncomplete) {
		return fmt.Errorf("keys rotate: %w. A user whose key does not open may be erased (its data cannot be read "+
			"anyway); every replica must run with %s first in MASTER_KEYS; then run onboard keys rotate again", err, current)
	}
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	older := keys.IDs()[1:]
	if done.ServerKeys+done.UserKeys+done.Raced == 0 {
		_, err = fmt.Fprintf(out, "nothing to re-wrap: every key is wrapped under master key %s\n", current)
	} else {
		_, err = fmt.Fprintf(out, "re-wrapped %d server keys and %d users' keys from master key %s under %s in %s",
			done.ServerKeys, done.UserKeys, strings.Join(done.From, ", "), current, done.Elapsed.Round(time.Millisecond))
		if err == nil && done.Raced > 0 {
			_, err = fmt.Fprintf(out, " (%d by another run meanwhile)", done.Raced)
		}
		if err == nil {
			_, err = fmt.Fprintln(out)
		}
	}
	if err == nil && len(older) == 1 {
		_, err = fmt.Fprintf(out, "no stored key needs master key %s any more: remove it from MASTER_KEYS and restart "+
			"every replica\n", older[0])
	} else if err == nil && len(older) > 1 {
		_, err = fmt.Fprintf(out, "no stored key needs master keys %s any more: remove them from MASTER_KEYS and "+
			"restart every replica\n", strings.Join(older, ", "))
	}
	return err
}
