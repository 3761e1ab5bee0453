package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/sqldb"
)

// errMasterKeyRequired stops a start on a database server without
// MASTER_KEY or MASTER_KEYS: a key file on the service's disk would be
// lost with a container, and differ between replicas.
var errMasterKeyRequired = errors.New("MASTER_KEY is not set, nor MASTER_KEYS: PostgreSQL and MySQL need one; " +
	"set MASTER_KEY to the base64 of 32 random bytes (openssl rand -base64 32), the same for every replica, " +
	"kept apart from the database's backups")

// checkMasterKey refuses, before any connection, a configuration that
// cannot have a master key.
func checkMasterKey(cfg Config) error {
	if _, sqlite := sqldb.SQLitePath(cfg.DatabaseURL); cfg.MasterKeys == nil && !sqlite {
		return errMasterKeyRequired
	}
	return nil
}

// openServerKeys returns the server's keys in db under the master keys:
// MASTER_KEYS or MASTER_KEY, or on SQLite without them the key file
// beside the database file, made on the first start (and logged then,
// without the key). It checks that the master keys open every key already
// stored, the users' too.
func openServerKeys(ctx context.Context, cfg Config, db *sql.DB, logger *slog.Logger) (*secrets.ServerKeys, error) {
	master, source := cfg.MasterKeys, cfg.masterKeysFrom
	if source == "" {
		source = "Config.MasterKeys" // set in code, not from the environment
	}
	if master == nil {
		dbPath, ok := sqldb.SQLitePath(cfg.DatabaseURL)
		if !ok {
			return nil, errMasterKeyRequired
		}
		path := filepath.Join(filepath.Dir(dbPath), secrets.MasterKeyFile)
		key, created, err := secrets.LoadOrCreateMasterKeyFile(path)
		if err != nil {
			return nil, fmt.Errorf("MASTER_KEY is not set, and %w", err)
		}
		if created {
			logger.Info("MASTER_KEY is not set: made a master key file beside the database, read at every start; "+
				"without it the keys in the database cannot be read: back it up, apart from the database's backups",
				"path", path, "master_key_id", key.ID())
		}
		master, source = secrets.OneMasterKey(key), "the master key file "+path
	}
	keys := secrets.NewServerKeys(db, master)
	if err := keys.Check(ctx); err != nil {
		switch {
		case errors.Is(err, secrets.ErrUnknownMasterKey):
			return nil, fmt.Errorf("%s does not open the keys stored in the database (%w): start with the master keys "+
				"they are wrapped under; to rotate, list the old key in MASTER_KEYS after the new one, restart every "+
				"replica, run onboard keys rotate, and only then remove the old key", source, err)
		case errors.Is(err, secrets.ErrWrongMasterKey):
			return nil, fmt.Errorf("%s does not open the keys stored in the database: start with the master key "+
				"it was first started with (%w)", source, err)
		}
		return nil, err
	}
	return keys, nil
}

// OpenMasterKeys returns the master keys of cfg for the operator's
// commands, once they open every key stored in db.
func OpenMasterKeys(ctx context.Context, cfg Config, db *sql.DB) (*secrets.MasterKeys, error) {
	keys, err := openServerKeys(ctx, cfg, db, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	return keys.MasterKeys(), nil
}
