package sqldb

import (
	"context"
	"database/sql"
)

// OpenAt opens the database of rawURL as Open does, but applies its
// migrations up to version alone, as an older build left it.
func OpenAt(ctx context.Context, rawURL string, version int64) (*sql.DB, error) {
	driver, dsn, err := driverDSN(rawURL)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	provider, err := migrations(db)
	if err == nil {
		_, err = provider.UpTo(ctx, version)
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}
