package watermillsql

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"fmt"
	"strings"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// watermill-sql ships PostgreSQL and MySQL adapters; these are its SQLite
// ones. Table names follow watermill's: watermill_<topic> and
// watermill_offsets_<topic>.

// SQLiteSchema is watermill-sql's SchemaAdapter for SQLite. SQLite has one
// writer at a time, so offsets (INTEGER PRIMARY KEY AUTOINCREMENT) become
// visible in the order they were assigned: no transaction-id bookkeeping is
// needed, unlike PostgreSQL.
type SQLiteSchema struct {
	// SubscribeBatchSize is how many messages one query reads; 100 by default.
	SubscribeBatchSize int
}

// SchemaInitializingQueries creates the topic's table.
func (s SQLiteSchema) SchemaInitializingQueries(params wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return []wsql.Query{{Query: `CREATE TABLE IF NOT EXISTS ` + s.MessagesTable(params.Topic) + ` (
		"offset"   INTEGER PRIMARY KEY AUTOINCREMENT,
		uuid       TEXT NOT NULL,
		created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
		payload    BLOB,
		metadata   TEXT
	)`}}, nil
}

// InsertQuery inserts messages in one statement.
func (s SQLiteSchema) InsertQuery(params wsql.InsertQueryParams) (wsql.Query, error) {
	args, err := messageArgs(params.Msgs)
	if err != nil {
		return wsql.Query{}, err
	}
	values := strings.TrimSuffix(strings.Repeat("(?,?,?),", len(params.Msgs)), ",")
	return wsql.Query{
		Query: `INSERT INTO ` + s.MessagesTable(params.Topic) + ` (uuid, payload, metadata) VALUES ` + values,
		Args:  args,
	}, nil
}

// SelectQuery reads the next batch after the consumer group's acked offset.
func (s SQLiteSchema) SelectQuery(params wsql.SelectQueryParams) (wsql.Query, error) {
	next, err := params.OffsetsAdapter.NextOffsetQuery(wsql.NextOffsetQueryParams{
		Topic:         params.Topic,
		ConsumerGroup: params.ConsumerGroup,
	})
	if err != nil {
		return wsql.Query{}, err
	}
	batch := s.SubscribeBatchSize
	if batch <= 0 {
		batch = 100
	}
	return wsql.Query{
		Query: fmt.Sprintf(`SELECT "offset", uuid, payload, metadata FROM %s WHERE "offset" > (%s) ORDER BY "offset" LIMIT %d`,
			s.MessagesTable(params.Topic), next.Query, batch),
		Args: next.Args,
	}, nil
}

// UnmarshalMessage turns a selected row into a message.
func (s SQLiteSchema) UnmarshalMessage(params wsql.UnmarshalMessageParams) (wsql.Row, error) {
	return unmarshalMessageRow(params.Row)
}

// unmarshalMessageRow scans "offset", uuid, payload and metadata (JSON
// text, may be NULL) into a row and its message.
func unmarshalMessageRow(row wsql.Scanner) (wsql.Row, error) {
	var r wsql.Row
	var metadata stdsql.NullString
	if err := row.Scan(&r.Offset, &r.UUID, &r.Payload, &metadata); err != nil {
		return wsql.Row{}, fmt.Errorf("scan message row: %w", err)
	}
	msg := message.NewMessage(string(r.UUID), r.Payload)
	if metadata.Valid && metadata.String != "" {
		r.Metadata = []byte(metadata.String)
		if err := json.Unmarshal(r.Metadata, &msg.Metadata); err != nil {
			return wsql.Row{}, fmt.Errorf("unmarshal metadata of message %s: %w", msg.UUID, err)
		}
	}
	r.Msg = msg
	return r, nil
}

// SubscribeIsolationLevel is ignored by SQLite, whose transactions are serializable.
func (s SQLiteSchema) SubscribeIsolationLevel() stdsql.IsolationLevel {
	return stdsql.LevelSerializable
}

// MessagesTable is the quoted table name of a topic.
func (s SQLiteSchema) MessagesTable(topic string) string { return `"watermill_` + topic + `"` }

// SQLiteOffsetsAdapter is watermill-sql's OffsetsAdapter for SQLite: one row
// per consumer group with its last acked offset.
type SQLiteOffsetsAdapter struct{}

// SchemaInitializingQueries creates the topic's offsets table.
func (a SQLiteOffsetsAdapter) SchemaInitializingQueries(params wsql.OffsetsSchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return []wsql.Query{{Query: `CREATE TABLE IF NOT EXISTS ` + a.MessagesOffsetsTable(params.Topic) + ` (
		consumer_group TEXT NOT NULL PRIMARY KEY,
		offset_acked   INTEGER NOT NULL
	)`}}, nil
}

// AckMessageQuery moves the group's offset to the last acked row.
func (a SQLiteOffsetsAdapter) AckMessageQuery(params wsql.AckMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{
		Query: `INSERT INTO ` + a.MessagesOffsetsTable(params.Topic) + ` (consumer_group, offset_acked) VALUES (?, ?)
			ON CONFLICT (consumer_group) DO UPDATE SET offset_acked = excluded.offset_acked`,
		Args: []any{params.ConsumerGroup, params.LastRow.Offset},
	}, nil
}

// ConsumedMessageQuery is empty: nothing is written before the ack, so a
// subscriber's transaction stays read-only while its handler runs.
func (a SQLiteOffsetsAdapter) ConsumedMessageQuery(wsql.ConsumedMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{}, nil
}

// NextOffsetQuery selects the group's acked offset, 0 before its first ack.
func (a SQLiteOffsetsAdapter) NextOffsetQuery(params wsql.NextOffsetQueryParams) (wsql.Query, error) {
	return wsql.Query{
		Query: `SELECT COALESCE((SELECT offset_acked FROM ` + a.MessagesOffsetsTable(params.Topic) + ` WHERE consumer_group = ?), 0)`,
		Args:  []any{params.ConsumerGroup},
	}, nil
}

// BeforeSubscribingQueries has nothing to do on SQLite.
func (a SQLiteOffsetsAdapter) BeforeSubscribingQueries(wsql.BeforeSubscribingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}

// MessagesOffsetsTable is the quoted offsets table name of a topic.
func (a SQLiteOffsetsAdapter) MessagesOffsetsTable(topic string) string {
	return `"watermill_offsets_` + topic + `"`
}

// sqliteSubscriberBeginner hands watermill-sql's subscriber "transactions"
// that run each statement on its own. A real SQLite transaction would keep
// its snapshot while the handler runs; the handler's own writes then make the
// final ack fail (SQLITE_BUSY_SNAPSHOT) and the message loops forever. The
// offset is still written only after the handler acked, so delivery stays
// at-least-once; what is lost is the row lock that lets several subscribers
// of one consumer group compete, so each group must have one subscriber per
// topic (onboard has: one process owns a SQLite file, one subscriber per handler).
type sqliteSubscriberBeginner struct{ *stdsql.DB }

func (b sqliteSubscriberBeginner) BeginTx(context.Context, *stdsql.TxOptions) (wsql.Tx, error) {
	return b, nil
}

func (b sqliteSubscriberBeginner) ExecContext(ctx context.Context, query string, args ...any) (wsql.Result, error) {
	return b.DB.ExecContext(ctx, query, args...)
}

// QueryContext hands the rows to watermill-sql, which checks their Err.
func (b sqliteSubscriberBeginner) QueryContext(ctx context.Context, query string, args ...any) (wsql.Rows, error) {
	return b.DB.QueryContext(ctx, query, args...) //nolint:rowserrcheck // the caller checks Err
}

// Commit has nothing to commit: each statement committed on its own.
func (b sqliteSubscriberBeginner) Commit() error { return nil }

// Rollback has nothing to undo: nothing is written before the ack.
func (b sqliteSubscriberBeginner) Rollback() error { return nil }
