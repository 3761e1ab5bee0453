// Package adapters holds onboard's stores: the event store with its outbox,
// users and credentials, the points ledger, the deduplicator of effects,
// the server's random values, and the password hasher. The databases,
// transports and mailers have packages of their own below it.
package userdb

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/telemetry"

	"github.com/onboard/onboard/adapters/eventstore"
	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
)

// UserStore is the event store of users, with their email reservations,
// credentials and read model, which every write updates in its
// transaction.
type UserStore struct {
	db        *sql.DB
	events    *eventstore.Store
	readModel *UserReadModel
	queries   userQueries
	lookup    emailLookup
	keys      *userKeys
	// transactions is told of each transaction; nil: none.
	transactions TxHook
	// pipelines: registrations are sent as a sqldb.Pipeline first
	// (PostgreSQL); pipelined counts those that committed so.
	pipelines bool
	pipelined atomic.Int64
}

// UserStoreConfig configures NewUserStoreWithConfig.
type UserStoreConfig struct {
	DB     *sql.DB
	Logger *slog.Logger
	// LookupKey is the server's EmailLookupSecret, at least
	// ServerKeyBytes long, under which user_emails and the users read
	// model hold the hashes of addresses, never an address: required.
	LookupKey []byte
	// MasterKeys wrap the users' keys in user_keys, under which the users
	// read model holds names and addresses: required.
	MasterKeys *secrets.MasterKeys
	// Transactions is told of each of the store's transactions (see
	// TxHook); nil: none. Tracing makes a span of each publish into the
	// outbox, whose traceparent the message carries; zero: no spans.
	Transactions TxHook
	Tracing      telemetry.Tracing
	// Transport, when it is the sql transport on DB, takes the events
	// straight into its queue tables in the transaction that appends them,
	// marked as DeploymentID's; nil, or another transport: they go into
	// the outbox, which the forwarder moves.
	Transport    *transport.Transport
	DeploymentID string
}

// NewUserStoreWithConfig returns the users' store of cfg.DB.
func NewUserStoreWithConfig(cfg UserStoreConfig) (*UserStore, error) {
	if cfg.DB == nil {
		return nil, errors.New("user store: a database is required")
	}
	lookup, err := newEmailLookup(cfg.LookupKey)
	if err != nil {
		return nil, err
	}
	if cfg.MasterKeys == nil {
		return nil, errors.New("user store: master keys are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	keys := newUserKeys(cfg.DB, cfg.MasterKeys)
	events, err := eventstore.New(eventstore.Config{
		DB: cfg.DB, Events: domain.Events, Fields: userFields{events: domain.Events, keys: keys}, Logger: cfg.Logger,
		Tracing: cfg.Tracing, Transport: cfg.Transport, DeploymentID: cfg.DeploymentID,
	})
	if err != nil {
		return nil, err
	}
	s := newUserStore(cfg.DB, events, lookup, keys)
	s.transactions = cfg.Transactions
	return s, nil
}

// TxHook is told of each of a store's transactions: as it begins, with
// the store's operation ("UserStore.Register"), and, through the func it
// returns, as it ends, with its error. The context it returns (a span's)
// is the transaction's.
type TxHook func(ctx context.Context, operation string) (context.Context, func(error))

type userQueries struct {
	reserveEmail, emailOwner, releaseEmail, storeCredential, loadCredential, updateCredential string
	credentialByEmail, endSessions, endOtherSessions, startSession                            string
	releaseEmails, deleteCredential, destroyKey                                               string
}

// newUserStore returns the store of events, which looks addresses up by
// their hashes under lookup and keeps the users' keys.
func newUserStore(db *sql.DB, events *eventstore.Store, lookup emailLookup, keys *userKeys) *UserStore {
	d := sqldb.Of(db)
	return &UserStore{db: db, events: events, pipelines: d.Is(sqldb.Postgres), readModel: newUserReadModel(db, events, lookup, keys), lookup: lookup,
		keys: keys, queries: userQueries{
			reserveEmail: d.Rebind(d.InsertOrIgnore(
				`INSERT INTO user_emails (email_key, user_id) VALUES (?, ?)`, "email_key")),
			emailOwner:       d.Rebind(`SELECT user_id FROM user_emails WHERE email_key = ?`),
			releaseEmail:     d.Rebind(`DELETE FROM user_emails WHERE email_key = ? AND user_id = ?`),
			storeCredential:  d.Rebind(`INSERT INTO credentials (user_id, password_hash) VALUES (?, ?)`),
			loadCredential:   d.Rebind(`SELECT password_hash FROM credentials WHERE user_id = ?`),
			updateCredential: d.Rebind(`UPDATE credentials SET password_hash = ? WHERE user_id = ?`),
			endSessions:      d.Rebind(`DELETE FROM sessions WHERE user_id = ?`),
			endOtherSessions: d.Rebind(`DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?`),
			startSession:     d.Rebind(adapters.InsertSession),
			releaseEmails:    d.Rebind(`DELETE FROM user_emails WHERE user_id = ?`),
			deleteCredential: d.Rebind(`DELETE FROM credentials WHERE user_id = ?`),
			destroyKey:       d.Rebind(`DELETE FROM user_keys WHERE user_id = ?`),
			credentialByEmail: d.Rebind(`SELECT e.user_id, c.password_hash FROM user_emails e
			JOIN credentials c ON c.user_id = e.user_id WHERE e.email_key = ?`),
		}}
}

// ReadModel is the users read model the store writes.
func (s *UserStore) ReadModel() *UserReadModel { return s.readModel }

// Register commits, in one transaction, the email reservation, the
// credential, the user's key, the user's pending events and their outbox
// messages, and session when given (the user's first).
//
// On PostgreSQL the transaction is first sent as a sqldb.Pipeline, in two
// round trips; when that does not commit (the address or the id is taken,
// or the connection failed), the same writes run in a transaction of
// database/sql, which tells which.
func (s *UserStore) Register(ctx context.Context, user *domain.User, passwordHash []byte, session *command.Session) (err error) {
	write := func(ctx context.Context, tx writer) error {
		if err := s.reserveEmail(ctx, tx, user); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.queries.storeCredential, user.ID(), string(passwordHash)); err != nil {
			return fmt.Errorf("store credential: %w", err)
		}
		key, err := s.keys.create(ctx, tx, user.ID())
		if err != nil {
			return err
		}
		err = s.appendEvents(ctx, tx, user, key)
		if err == nil {
			err = s.readModel.writeSealed(ctx, tx, UsersTable, user, key)
		}
		if errors.Is(err, eventstore.ErrVersionConflict) { // another registration of this id won
			return domain.ErrUserExists
		}
		if err == nil && session != nil {
			if _, err = tx.ExecContext(ctx, s.queries.startSession, adapters.SessionRow(*session)...); err != nil {
				err = fmt.Errorf("store the session: %w", err)
			}
		}
		return err
	}
	if !s.pipelines {
		return s.inTx(ctx, "Register", func(ctx context.Context, tx *sql.Tx) error { return write(ctx, tx) })
	}
	ctx, end := s.told(ctx, "Register")
	defer func() { end(err) }()
	var pipeline sqldb.Pipeline
	if err := write(ctx, &pipeline); err == nil && pipeline.Commit(ctx, s.db) == nil {
		s.pipelined.Add(1)
		return nil
	}
	return s.runTx(ctx, func(ctx context.Context, tx *sql.Tx) error { return write(ctx, tx) })
}

// Save appends the user's pending events after the version it was loaded
// at and updates its read model row, in one transaction; another write
// since the load fails it with domain.ErrVersionMismatch.
func (s *UserStore) Save(ctx context.Context, user *domain.User) error {
	return s.inTx(ctx, "Save", func(ctx context.Context, tx *sql.Tx) error { return s.appendPending(ctx, tx, user) })
}

// ChangeEmail saves a user whose pending EmailChanged moves it from the
// address whose key is oldKey (domain.EmailKey; the store hashes it), releasing that address, reserving the new
// one and ending every session of the user but keepSession's (a token;
// "": all) in the same transaction: domain.ErrEmailTaken if another user
// holds it, domain.ErrVersionMismatch if the user changed meanwhile.
func (s *UserStore) ChangeEmail(ctx context.Context, user *domain.User, oldKey, keepSession string) error {
	return s.inTx(ctx, "ChangeEmail", func(ctx context.Context, tx *sql.Tx) error {
		// Releasing first takes the row's lock: concurrent changes of one
		// user queue here, and the ones after the first find nothing to
		// release.
		res, err := tx.ExecContext(ctx, s.queries.releaseEmail, s.lookup.hash(oldKey), user.ID())
		if err != nil {
			return fmt.Errorf("release email: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(err, domain.ErrVersionMismatch)
		}
		err = s.reserveEmail(ctx, tx, user)
		if errors.Is(err, domain.ErrUserExists) || errors.Is(err, command.ErrAlreadyRegistered) {
			return domain.ErrVersionMismatch // this user reserved another address meanwhile
		}
		if err != nil {
			return err
		}
		if err := s.endSessions(ctx, tx, user.ID(), keepSession); err != nil {
			return err
		}
		return s.appendPending(ctx, tx, user)
	})
}

// endSessions ends the user's sessions but keep's (a token; "": all).
func (s *UserStore) endSessions(ctx context.Context, tx *sql.Tx, userID, keep string) error {
	var err error
	if keep == "" {
		_, err = tx.ExecContext(ctx, s.queries.endSessions, userID)
	} else {
		_, err = tx.ExecContext(ctx, s.queries.endOtherSessions, userID, adapters.TokenHash(keep))
	}
	if err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	return nil
}

// appendPending appends the user's pending events at the version it was
// loaded at and writes its read model row, both under the user's key
// (made first for a user registered before keys).
func (s *UserStore) appendPending(ctx context.Context, tx *sql.Tx, user *domain.User) error {
	key, err := s.keys.keyOrCreate(ctx, tx, user.ID())
	if err != nil {
		return err
	}
	if err := s.appendEvents(ctx, tx, user, key); err != nil {
		return err
	}
	return s.readModel.writeSealed(ctx, tx, UsersTable, user, key)
}

// appendEvents appends the user's pending events at the version it was
// loaded at, their personal fields sealed under key.
func (s *UserStore) appendEvents(ctx context.Context, tx writer, user *domain.User, key cipher.AEAD) error {
	pending := user.PendingEvents()
	err := s.events.Append(ctx, tx, user.ID(), user.Version()-len(pending), key, pending...)
	if errors.Is(err, eventstore.ErrVersionConflict) {
		return errors.Join(err, domain.ErrVersionMismatch)
	}
	return err
}

// inTx runs write in a transaction, told to the store's TxHook,
// and commits it if write succeeds.
func (s *UserStore) inTx(ctx context.Context, operation string, write func(ctx context.Context, tx *sql.Tx) error) (err error) {
	ctx, end := s.told(ctx, operation)
	defer func() { end(err) }()
	return s.runTx(ctx, write)
}

// told tells the store's TxHook of a transaction of operation.
func (s *UserStore) told(ctx context.Context, operation string) (context.Context, func(error)) {
	if s.transactions == nil {
		return ctx, func(error) {}
	}
	return s.transactions(ctx, "UserStore."+operation)
}

// runTx runs write in a transaction and commits it if write succeeds.
func (s *UserStore) runTx(ctx context.Context, write func(ctx context.Context, tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := write(ctx, tx); err != nil {
		return err
	}
	return commit(tx)
}

func commit(tx *sql.Tx) error {
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// reserveEmail claims the email's key (its hash) for the user. A concurrent claim of the
// same key waits for this transaction, so exactly one wins. A claim that
// inserts nothing tells, by the key's owner, a redelivered registration
// (same user), a taken email (another user) or a reused user id (no owner).
func (s *UserStore) reserveEmail(ctx context.Context, tx writer, user *domain.User) error {
	res, err := tx.ExecContext(ctx, s.queries.reserveEmail, s.lookup.hash(user.Email().Key()), user.ID())
	if err != nil {
		return fmt.Errorf("reserve email: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var owner string
	err = scanRow(ctx, tx, s.queries.emailOwner, []any{s.lookup.hash(user.Email().Key())}, &owner)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return domain.ErrUserExists
	case err != nil:
		return fmt.Errorf("read email owner: %w", err)
	case owner == user.ID():
		return command.ErrAlreadyRegistered
	}
	return domain.ErrEmailTaken
}

// RegisteredUser returns a user and its password hash, or
// domain.ErrUserNotFound.
func (s *UserStore) RegisteredUser(ctx context.Context, id string) (*domain.User, []byte, error) {
	user, err := s.LoadUser(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	hash, err := s.PasswordHash(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return user, hash, nil
}

// HoldsUser reports whether this database holds the user's stream.
func (s *UserStore) HoldsUser(ctx context.Context, id string) (bool, error) {
	return s.events.Holds(ctx, id)
}

// LoadUser rebuilds a user from its stream, or returns
// domain.ErrUserNotFound, or domain.ErrUserErased.
func (s *UserStore) LoadUser(ctx context.Context, id string) (*domain.User, error) {
	events, err := s.events.Load(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	user, err := domain.UnmarshalUserFromEvents(events)
	if err == nil && user.Erased() {
		return nil, domain.ErrUserErased
	}
	return user, err
}

// Erase commits a user whose pending event is UserErased, and in the same
// transaction destroys the user's key, under which the personal fields of
// its events are sealed, releases its address for a new registration,
// deletes its credential and sessions, and empties its read model row of
// personal data: domain.ErrVersionMismatch if the user changed meanwhile.
func (s *UserStore) Erase(ctx context.Context, user *domain.User) error {
	defer s.keys.forget(user.ID())
	return s.inTx(ctx, "Erase", func(ctx context.Context, tx *sql.Tx) error {
		if err := s.appendEvents(ctx, tx, user, nil); err != nil {
			return err
		}
		for _, q := range []struct{ query, what string }{
			{s.queries.destroyKey, "destroy the key"},
			{s.queries.releaseEmails, "release the address"},
			{s.queries.deleteCredential, "delete the credential"},
			{s.queries.endSessions, "end the sessions"},
		} {
			if _, err := tx.ExecContext(ctx, q.query, user.ID()); err != nil {
				return fmt.Errorf("erase user %s: %s: %w", user.ID(), q.what, err)
			}
		}
		return s.readModel.writeErased(ctx, tx, UsersTable, user)
	})
}

// Recorded reads the user's stream, its personal fields opened, for an
// export.
func (s *UserStore) Recorded(ctx context.Context, userID string) ([]query.RecordedEvent, error) {
	recorded, err := s.events.Recorded(ctx, userID)
	if errors.Is(err, eventstore.ErrNoStream) {
		return nil, domain.ErrUserNotFound
	}
	return recorded, err
}

// OpenEvent opens, in place, the sealed personal fields of an event a
// handler received as message eventID, with the user's key as wrapped
// (read beside the handler's claim: a nil Nonce when the user has none),
// or else with the key it reads: domain.ErrUserErased when the user's key
// is gone, domain.ErrCorruptData when a field does not open.
func (s *UserStore) OpenEvent(ctx context.Context, eventID string, event domain.Event, wrapped *secrets.WrappedSecret) error {
	userID := event.StreamID()
	key := &streamKey{userID: userID, unwrap: func() (cipher.AEAD, error) {
		switch {
		case wrapped == nil:
			return s.keys.key(ctx, s.db, userID)
		case wrapped.Nonce == nil:
			return nil, fmt.Errorf("user %s: %w", userID, errNoUserKey)
		}
		return s.keys.open(userID, *wrapped)
	}}
	_, err := openEvent(s.events.Events(), key, eventID, event)
	return err
}

// Owner returns the id of the user holding the address, in any letter
// case, or domain.ErrUserNotFound.
func (s *UserStore) Owner(ctx context.Context, email string) (string, error) {
	var owner string
	err := s.db.QueryRowContext(ctx, s.queries.emailOwner, s.lookup.hash(email)).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", domain.ErrUserNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read email owner: %w", err)
	}
	return owner, nil
}

// Credential returns the id and password hash of the user holding the
// address, in any letter case, or domain.ErrUserNotFound.
func (s *UserStore) Credential(ctx context.Context, email string) (string, []byte, error) {
	var (
		owner string
		hash  string
	)
	err := s.db.QueryRowContext(ctx, s.queries.credentialByEmail, s.lookup.hash(email)).Scan(&owner, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, domain.ErrUserNotFound
	}
	if err != nil {
		return "", nil, fmt.Errorf("load credential: %w", err)
	}
	return owner, []byte(hash), nil
}

// PasswordHash returns the user's password hash, or domain.ErrUserNotFound.
func (s *UserStore) PasswordHash(ctx context.Context, userID string) ([]byte, error) {
	var hash string
	err := s.db.QueryRowContext(ctx, s.queries.loadCredential, userID).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.ErrUserNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load credential: %w", err)
	}
	return []byte(hash), nil
}

// ChangePassword stores the user's new password hash, ends every session
// of the user and appends its pending events (PasswordChanged) in one
// transaction: another write to the stream since the user was loaded
// fails it with domain.ErrVersionMismatch, so a reset link is used once.
func (s *UserStore) ChangePassword(ctx context.Context, user *domain.User, passwordHash []byte) error {
	return s.inTx(ctx, "ChangePassword", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.queries.updateCredential, string(passwordHash), user.ID()); err != nil {
			return fmt.Errorf("store credential: %w", err)
		}
		if err := s.endSessions(ctx, tx, user.ID(), ""); err != nil {
			return err
		}
		return s.appendPending(ctx, tx, user)
	})
}
