package secrets

import (
	"context"
	"database/sql"
)

// ReadUserKeysToRotate reads, in a transaction of its own, the first
// batch of user_keys a rotation under keys would re-wrap, and returns the
// step that writes it, in another transaction: a test runs another
// rotation between the two.
func ReadUserKeysToRotate(ctx context.Context, db *sql.DB, keys *MasterKeys) (write func() (rewrapped int, err error),
	err error) {
	r := &rotator{cfg: MasterKeyRotationConfig{DB: db, MasterKeys: keys, BatchSize: DefaultRotationBatch},
		current: keys.Current().ID()}
	t := rotatedTables[1]
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	userIDs, wrapped, err := r.readBatch(ctx, tx, t, "")
	if err != nil {
		return nil, err
	}
	return func() (int, error) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		defer func() { _ = tx.Rollback() }()
		batch, err := r.writeBatch(ctx, tx, t, userIDs, wrapped)
		if err != nil {
			return 0, err
		}
		return batch.rewrapped, tx.Commit()
	}, nil
}
