package userdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/domain"
)

// SeedUsers writes, in one transaction, what Register writes for each of
// the registrations (of valid users; nothing checks them): the email reservation, the
// credential (passwordHash, the same for all), the user's key, the events
// and the read model row, in one multi-row statement per table. It
// publishes nothing and checks nothing: it fills a database for a load test
// (cmd/loadgen seed), whose caller writes the events' effects itself.
func (s *UserStore) SeedUsers(ctx context.Context, registrations []domain.UserRegistered, passwordHash []byte) error {
	if len(registrations) == 0 {
		return nil
	}
	rows := map[string][][]any{}
	for _, registered := range registrations {
		u, err := domain.UnmarshalUserFromEvents([]domain.Event{registered})
		if err != nil {
			return err
		}
		wrapped, key, err := s.keys.newKey(u.ID())
		if err != nil {
			return err
		}
		emailKey := s.lookup.hash(u.Email().Key())
		rows["user_emails"] = append(rows["user_emails"], []any{emailKey, u.ID()})
		rows["credentials"] = append(rows["credentials"], []any{u.ID(), string(passwordHash)})
		rows["user_keys"] = append(rows["user_keys"], []any{u.ID(), wrapped.MasterKeyID, wrapped.Nonce, wrapped.Ciphertext})
		schemaVersion, err := s.events.Events().Version(registered.EventName())
		if err != nil {
			return err
		}
		eventID := uuid.Must(uuid.NewV7()).String()
		sealed, err := sealEvent(s.events.Events(), key, eventID, registered)
		if err != nil {
			return err
		}
		payload, err := json.Marshal(sealed)
		if err != nil {
			return err
		}
		rows["events"] = append(rows["events"],
			[]any{eventID, u.ID(), u.Version(), registered.EventName(), schemaVersion, string(payload), "{}"})
		name, email, err := sealRow(key, u)
		if err != nil {
			return err
		}
		// last_position is set below, once the events have theirs.
		rows[UsersTable] = append(rows[UsersTable], []any{u.ID(), name, email, emailKey,
			u.EmailVerified(), u.Locale(), u.RegisteredAt().UTC(), u.Erased(), u.Version(), 0})
	}
	columns := map[string]string{
		"user_emails": "email_key, user_id",
		"credentials": "user_id, password_hash",
		"user_keys":   "user_id, master_key_id, nonce, ciphertext",
		"events":      "event_id, stream_id, stream_version, event_type, schema_version, payload, metadata",
		UsersTable:    strings.Join(userColumns, ", "),
	}
	return s.inTx(ctx, "SeedUsers", func(ctx context.Context, tx *sql.Tx) error {
		for _, table := range []string{"user_emails", "credentials", "user_keys", "events", UsersTable} {
			if err := sqldb.InsertRows(ctx, tx, sqldb.Of(s.db), table, columns[table], rows[table]); err != nil {
				return err
			}
		}
		// This batch's rows alone: on MySQL a range over every row at 0
		// would wait on, and deadlock with, a concurrent batch's.
		ids := make([]any, len(registrations))
		for i, r := range registrations {
			ids[i] = r.UserID
		}
		_, err := tx.ExecContext(ctx, sqldb.Of(s.db).Rebind(`UPDATE `+UsersTable+` SET last_position =
			(SELECT max(global_position) FROM events WHERE stream_id = `+UsersTable+`.user_id)
			WHERE user_id IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")+`)`), ids...)
		if err != nil {
			return fmt.Errorf("seed %s: %w", UsersTable, err)
		}
		return nil
	})
}
