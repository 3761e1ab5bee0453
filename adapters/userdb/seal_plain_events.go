package userdb

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/sqldb"
)

// SealPlainEvents, run at start, seals the personal fields that events
// written by older versions hold in the clear, under their user's key
// (made first for a user registered before keys), and returns how many
// events it rewrote. An event keeps its id, version and meaning: only its
// stored form changes, once, in the form of the schema version it was
// written at. The copies such events left on the transport are not
// rewritten. An erased user's stream is left alone: it has no key.
func (s *UserStore) SealPlainEvents(ctx context.Context) (int, error) {
	var types []string
	for _, name := range s.events.Events().Names() {
		if s.events.Events().HasPersonalData(name) {
			types = append(types, "'"+name+"'")
		}
	}
	payload := "payload"
	switch d := sqldb.Of(s.db); {
	case d.Is(sqldb.Postgres):
		payload = "payload::text"
	case d.Is(sqldb.MySQL):
		payload = "CAST(payload AS CHAR)"
	}
	find := sqldb.Of(s.db).Rebind(`SELECT global_position, event_id, stream_id, event_type, payload FROM events
		WHERE global_position > ? AND event_type IN (` + strings.Join(types, ", ") + `)
		AND ` + payload + ` NOT LIKE '%"` + secrets.SealedPrefix + `%'
		AND stream_id NOT IN (SELECT stream_id FROM events WHERE event_type = '` + erasedEvent + `')
		ORDER BY global_position LIMIT ?`)
	total := 0
	var after int64
	for {
		batch, err := s.plainEvents(ctx, find, after)
		if err != nil || len(batch) == 0 {
			return total, err
		}
		after = batch[len(batch)-1].position
		n, err := s.sealEvents(ctx, batch)
		total += n
		if err != nil {
			return total, err
		}
	}
}

// plainEvent is a row of events that may hold personal fields in the clear.
type plainEvent struct {
	position                     int64
	eventID, streamID, eventType string
	payload                      []byte
}

func (s *UserStore) plainEvents(ctx context.Context, find string, after int64) ([]plainEvent, error) {
	rows, err := s.db.QueryContext(ctx, find, after, projectionBatch)
	if err != nil {
		return nil, fmt.Errorf("find events in the clear: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var batch []plainEvent
	for rows.Next() {
		var e plainEvent
		if err := rows.Scan(&e.position, &e.eventID, &e.streamID, &e.eventType, &e.payload); err != nil {
			return nil, fmt.Errorf("find events in the clear: %w", err)
		}
		batch = append(batch, e)
	}
	return batch, rows.Err()
}

// sealEvents seals the plain personal fields of the events in one
// transaction.
func (s *UserStore) sealEvents(ctx context.Context, batch []plainEvent) (int, error) {
	update := sqldb.Of(s.db).Rebind(`UPDATE events SET payload = ? WHERE event_id = ?`)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	keys := map[string]cipher.AEAD{}
	total := 0
	for _, e := range batch {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(e.payload, &fields); err != nil {
			return 0, fmt.Errorf("event %s: %w", e.eventID, err)
		}
		eventType, _ := s.events.Events().Type(e.eventType)
		changed := false
		for _, field := range eventType.PersonalFields() {
			var value string
			if json.Unmarshal(fields[field], &value) != nil || value == "" || secrets.IsSealed(value) {
				continue
			}
			key, ok := keys[e.streamID]
			if !ok {
				if key, err = s.keys.keyOrCreate(ctx, tx, e.streamID); err != nil {
					return 0, err
				}
				keys[e.streamID] = key
			}
			sealed, err := secrets.SealValue(key, eventFieldAAD(e.streamID, e.eventID, field), value)
			if err != nil {
				return 0, fmt.Errorf("encrypt the %s of event %s: %w", field, e.eventID, err)
			}
			if fields[field], err = json.Marshal(sealed); err != nil {
				return 0, err
			}
			changed = true
		}
		if !changed {
			continue
		}
		payload, err := json.Marshal(fields)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, update, string(payload), e.eventID); err != nil {
			return 0, fmt.Errorf("encrypt event %s: %w", e.eventID, err)
		}
		total++
	}
	return total, commit(tx)
}
