package adapters

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
)

// SessionStoreConfig configures a SessionStore.
type SessionStoreConfig struct {
	DB *sql.DB
	// TTL is a session's lifetime from sign-in; IdleTimeout ends it
	// sooner when it is not used for that long.
	TTL, IdleTimeout time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
}

// Defaults of SessionStoreConfig.
const (
	DefaultSessionTTL         = 24 * time.Hour
	DefaultSessionIdleTimeout = time.Hour
)

func (c *SessionStoreConfig) setDefaults() {
	if c.TTL == 0 {
		c.TTL = DefaultSessionTTL
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultSessionIdleTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate returns every problem of the configuration at once.
func (c SessionStoreConfig) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("sessions: a database is required"))
	}
	if c.TTL <= 0 || c.IdleTimeout <= 0 {
		errs = append(errs, errors.New("sessions: want a positive lifetime and idle timeout"))
	}
	return errors.Join(errs...)
}

// SessionStore keeps sign-in sessions in the database. A token is 256
// random bits; the table holds only its SHA-256, so that neither a backup
// nor a read of the table gives anyone a session.
type SessionStore struct {
	cfg     SessionStoreConfig
	queries struct{ insert, insertIfCredential, read, touch, end, endOthers, endAll, endDead string }
}

// sessionTouchEvery bounds the writes of a busy session: its idle timeout
// slides at most once a minute.
const sessionTouchEvery = time.Minute

// NewSessionStore returns the store.
func NewSessionStore(cfg SessionStoreConfig) (*SessionStore, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := sqldb.Of(cfg.DB)
	s := &SessionStore{cfg: cfg}
	s.queries.insert = d.Rebind(InsertSession)
	// A sign-in's session is stored only while the credential still holds
	// the hash its password was compared with, the row locked until the
	// session commits: a password change (a reset) either comes first, and
	// no session is stored, or waits, and ends it.
	s.queries.insertIfCredential = d.Rebind(`INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_used_at)
		SELECT ?, ?, ?, ?, ? FROM credentials WHERE user_id = ? AND password_hash = ?` + d.LockRows(false))
	s.queries.read = d.Rebind(`SELECT user_id, expires_at, last_used_at FROM sessions WHERE token_hash = ?`)
	s.queries.touch = d.Rebind(`UPDATE sessions SET last_used_at = ? WHERE token_hash = ?`)
	s.queries.end = d.Rebind(`DELETE FROM sessions WHERE token_hash = ?`)
	s.queries.endOthers = d.Rebind(`DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?`)
	s.queries.endAll = d.Rebind(`DELETE FROM sessions WHERE user_id = ?`)
	s.queries.endDead = d.Rebind(`DELETE FROM sessions WHERE user_id = ? AND (expires_at <= ? OR last_used_at <= ?)`)
	return s, nil
}

// Open makes a session of the user, not stored: a registration stores it
// in its own transaction.
func (s *SessionStore) Open(userID string) (command.Session, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return command.Session{}, fmt.Errorf("make a session token: %w", err)
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	return command.Session{UserID: userID, Token: base64.RawURLEncoding.EncodeToString(raw),
		StartedAt: now, ExpiresAt: now.Add(s.cfg.TTL)}, nil
}

// Start opens a session of the user. With checkedHash, only while the
// user's credential still holds it: else domain.ErrInvalidCredentials.
func (s *SessionStore) Start(ctx context.Context, userID string, checkedHash []byte) (command.Session, error) {
	session, err := s.Open(userID)
	if err != nil {
		return command.Session{}, err
	}
	now := session.StartedAt
	// A user's sessions that ended unused are dropped when it signs in
	// again: its rows stay as few as its live sessions. A session without
	// checkedHash is a registration's, its user's first: nothing to drop.
	if checkedHash != nil {
		if _, err := s.cfg.DB.ExecContext(ctx, s.queries.endDead, userID, now, now.Add(-s.cfg.IdleTimeout)); err != nil {
			return command.Session{}, fmt.Errorf("drop ended sessions: %w", err)
		}
	}
	query, args := s.queries.insert, SessionRow(session)
	if checkedHash != nil {
		query, args = s.queries.insertIfCredential, append(args, userID, string(checkedHash))
	}
	res, err := s.cfg.DB.ExecContext(ctx, query, args...)
	if err != nil {
		return command.Session{}, fmt.Errorf("store a session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return command.Session{}, fmt.Errorf("store a session: %w", err)
	} else if n != 1 {
		return command.Session{}, domain.ErrInvalidCredentials // the password changed meanwhile
	}
	return session, nil
}

// InsertSession stores a session: its arguments are SessionRow's.
const InsertSession = `INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_used_at) VALUES (?, ?, ?, ?, ?)`

// SessionRow is the arguments of InsertSession for session.
func SessionRow(session command.Session) []any {
	return []any{TokenHash(session.Token), session.UserID, session.StartedAt, session.ExpiresAt, session.StartedAt}
}

// User returns the user of a live session, sliding its idle timeout.
func (s *SessionStore) User(ctx context.Context, token string) (string, error) {
	if token == "" || len(token) > 128 {
		return "", domain.ErrUnauthenticated
	}
	hash := TokenHash(token)
	var (
		userID            string
		expires, lastUsed time.Time
	)
	err := s.cfg.DB.QueryRowContext(ctx, s.queries.read, hash).Scan(&userID, &expires, &lastUsed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", domain.ErrUnauthenticated
	}
	if err != nil {
		return "", fmt.Errorf("read a session: %w", err)
	}
	now := s.cfg.Now()
	if !now.Before(expires) || !now.Before(lastUsed.Add(s.cfg.IdleTimeout)) {
		if _, err := s.cfg.DB.ExecContext(ctx, s.queries.end, hash); err != nil {
			return "", fmt.Errorf("end a session: %w", err)
		}
		return "", domain.ErrUnauthenticated
	}
	if now.Sub(lastUsed) >= sessionTouchEvery {
		if _, err := s.cfg.DB.ExecContext(ctx, s.queries.touch, now.UTC().Truncate(time.Microsecond), hash); err != nil {
			return "", fmt.Errorf("touch a session: %w", err)
		}
	}
	return userID, nil
}

// End ends the session of token.
func (s *SessionStore) End(ctx context.Context, token string) error {
	if _, err := s.cfg.DB.ExecContext(ctx, s.queries.end, TokenHash(token)); err != nil {
		return fmt.Errorf("end a session: %w", err)
	}
	return nil
}

// EndOthers ends every session of the user but keep's; keep "" ends all.
func (s *SessionStore) EndOthers(ctx context.Context, userID, keep string) error {
	var err error
	if keep == "" {
		_, err = s.cfg.DB.ExecContext(ctx, s.queries.endAll, userID)
	} else {
		_, err = s.cfg.DB.ExecContext(ctx, s.queries.endOthers, userID, TokenHash(keep))
	}
	if err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	return nil
}

// TokenHash is how a token is stored: its SHA-256, in hex. A token has 256
// random bits, so a fast hash is as good as a slow one.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
