package watermillsql

import (
	stdsql "database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"

	"github.com/onboard/onboard/adapters/sqldb"
)

// QueueSchema is the watermill-sql SchemaAdapter onboard uses on PostgreSQL
// and MySQL/MariaDB: a queue per consumer group. Publishing a message writes
// one row for every consumer group registered on the topic; a subscriber
// locks its group's oldest rows with FOR UPDATE SKIP LOCKED and deletes them
// once acked.
//
// Watermill's offset-based adapters read rows past a consumer group's last
// acked offset. On MySQL a row that commits after a higher offset was acked
// is never read; on PostgreSQL readers wait for the oldest transaction open
// on the whole server. A queue has neither problem: an unacked row is read
// whenever it becomes visible, whatever its offset, and replicas of one
// consumer group share the work instead of waiting on each other's locks.
//
// A consumer group receives what is published after it was registered,
// which SubscribeInitialize and Subscribe do (see QueueOffsetsAdapter).
// Order holds for one subscriber per consumer group; with several, each
// message still goes to exactly one of them.
type QueueSchema struct {
	// MySQL selects MySQL/MariaDB SQL; PostgreSQL otherwise.
	MySQL bool
	// BatchSize is how many rows one query locks; 32 by default.
	BatchSize int
}

// MessagesTable is the quoted name of the topic's queue table.
func (s QueueSchema) MessagesTable(topic string) string { return s.quote("watermill_queue_" + topic) }

// GroupsTable is the quoted name of the table of the topic's consumer groups.
func (s QueueSchema) GroupsTable(topic string) string { return s.quote("watermill_groups_" + topic) }

func (s QueueSchema) quote(name string) string {
	if s.MySQL {
		return "`" + name + "`"
	}
	return `"` + name + `"`
}

// rebind turns ? placeholders into $n on PostgreSQL.
func (s QueueSchema) rebind(query string) string {
	if s.MySQL {
		return query
	}
	return sqldb.Postgres.Rebind(query)
}

// SchemaInitializingQueries creates the topic's queue and groups tables.
func (s QueueSchema) SchemaInitializingQueries(params wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	queue, groups := s.MessagesTable(params.Topic), s.GroupsTable(params.Topic)
	if s.MySQL {
		return []wsql.Query{
			{Query: "CREATE TABLE IF NOT EXISTS " + queue + " (" +
				"`offset` BIGINT NOT NULL AUTO_INCREMENT, " +
				"consumer_group VARCHAR(255) NOT NULL, " +
				"uuid VARCHAR(36) NOT NULL, " +
				"payload LONGBLOB, " +
				"metadata LONGTEXT, " +
				"created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), " +
				"PRIMARY KEY (consumer_group, `offset`), " +
				"KEY (`offset`))"},
			{Query: "CREATE TABLE IF NOT EXISTS " + groups + " (consumer_group VARCHAR(255) NOT NULL PRIMARY KEY)"},
		}, nil
	}
	return append([]wsql.Query{
		// Concurrent CREATE TABLE IF NOT EXISTS can collide on PostgreSQL.
		{Query: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", wsql.DefaultSchemaInitializationLock("onboard"))},
		{Query: `CREATE TABLE IF NOT EXISTS ` + queue + ` (
			"offset"       BIGSERIAL,
			consumer_group VARCHAR(255) NOT NULL,
			uuid           VARCHAR(36) NOT NULL,
			payload        BYTEA,
			metadata       TEXT,
			created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
			PRIMARY KEY (consumer_group, "offset"))`},
		{Query: `CREATE TABLE IF NOT EXISTS ` + groups + ` (consumer_group VARCHAR(255) NOT NULL PRIMARY KEY)`},
	}, notifyTriggerQueries(queue, params.Topic)...), nil
}

// RequiresTransaction has PostgreSQL initialize the schema in a transaction,
// under the advisory lock above.
func (s QueueSchema) RequiresTransaction() bool { return !s.MySQL }

// InsertQuery writes each message once per registered consumer group, in
// one statement, in the order given.
func (s QueueSchema) InsertQuery(params wsql.InsertQueryParams) (wsql.Query, error) {
	args, err := messageArgs(params.Msgs)
	if err != nil {
		return wsql.Query{}, err
	}
	rows := make([]string, 0, len(params.Msgs))
	for i := range params.Msgs {
		ord := strconv.Itoa(i)
		switch {
		case !s.MySQL:
			rows = append(rows, "("+ord+", ?, CAST(? AS BYTEA), ?)")
		case i == 0:
			rows = append(rows, "SELECT "+ord+" AS ord, ? AS uuid, ? AS payload, ? AS metadata")
		default:
			rows = append(rows, "SELECT "+ord+", ?, ?, ?")
		}
	}
	messages := "(VALUES " + strings.Join(rows, ", ") + ") AS m (ord, uuid, payload, metadata)"
	if s.MySQL {
		messages = "(" + strings.Join(rows, " UNION ALL ") + ") AS m"
	}
	return wsql.Query{
		Query: s.rebind("INSERT INTO " + s.MessagesTable(params.Topic) + " (consumer_group, uuid, payload, metadata) " +
			"SELECT g.consumer_group, m.uuid, m.payload, m.metadata FROM " + messages +
			" CROSS JOIN " + s.GroupsTable(params.Topic) + " g ORDER BY m.ord, g.consumer_group"),
		Args: args,
	}, nil
}

// SelectQuery locks the group's oldest rows that no other subscriber holds.
func (s QueueSchema) SelectQuery(params wsql.SelectQueryParams) (wsql.Query, error) {
	batch := s.batch()
	offset := s.quote("offset")
	return wsql.Query{
		Query: s.rebind(fmt.Sprintf("SELECT %s, uuid, payload, metadata FROM %s WHERE consumer_group = ? "+
			"ORDER BY %s LIMIT %d FOR UPDATE SKIP LOCKED", offset, s.MessagesTable(params.Topic), offset, batch)),
		Args: []any{params.ConsumerGroup},
	}, nil
}

func (s QueueSchema) batch() int {
	if s.BatchSize <= 0 {
		return 32
	}
	return s.BatchSize
}

// UnmarshalMessage turns a selected row into a message.
func (s QueueSchema) UnmarshalMessage(params wsql.UnmarshalMessageParams) (wsql.Row, error) {
	return unmarshalMessageRow(params.Row)
}

// SubscribeIsolationLevel is READ COMMITTED: the row locks do the work.
func (s QueueSchema) SubscribeIsolationLevel() stdsql.IsolationLevel {
	return stdsql.LevelReadCommitted
}

// QueueOffsetsAdapter is the OffsetsAdapter that goes with QueueSchema, for
// one consumer group: initializing a topic registers the group on it, and an
// ack deletes the acked rows.
type QueueOffsetsAdapter struct {
	Schema        QueueSchema
	ConsumerGroup string
}

// SchemaInitializingQueries registers the consumer group on the topic, so it
// receives every message published from now on, even before it subscribes.
func (a QueueOffsetsAdapter) SchemaInitializingQueries(params wsql.OffsetsSchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return []wsql.Query{a.registerGroup(params.Topic, a.ConsumerGroup)}, nil
}

// BeforeSubscribingQueries registers the consumer group, as above.
func (a QueueOffsetsAdapter) BeforeSubscribingQueries(params wsql.BeforeSubscribingQueriesParams) ([]wsql.Query, error) {
	return []wsql.Query{a.registerGroup(params.Topic, params.ConsumerGroup)}, nil
}

func (a QueueOffsetsAdapter) registerGroup(topic, group string) wsql.Query {
	insert := "INSERT INTO " + a.Schema.GroupsTable(topic) + " (consumer_group) VALUES (?)"
	if a.Schema.MySQL {
		return wsql.Query{Query: sqldb.MySQL.InsertOrIgnore(insert, "consumer_group"), Args: []any{group}}
	}
	return wsql.Query{Query: a.Schema.rebind(sqldb.Postgres.InsertOrIgnore(insert, "consumer_group")), Args: []any{group}}
}

// AckMessageQuery deletes the rows acked in this batch: those up to the last
// acked one, since a subscriber handles its batch in order and stops at the
// first row it could not deliver.
func (a QueueOffsetsAdapter) AckMessageQuery(params wsql.AckMessageQueryParams) (wsql.Query, error) {
	args := []any{params.ConsumerGroup}
	for _, row := range params.Rows {
		args = append(args, row.Offset)
		if row.Offset == params.LastRow.Offset {
			break
		}
	}
	in := strings.TrimSuffix(strings.Repeat("?,", len(args)-1), ",")
	mark := ""
	if !a.Schema.MySQL {
		mark = ackMark // sent with COMMIT by a pipelinedTx
	}
	return wsql.Query{
		Query: a.Schema.rebind(mark + "DELETE FROM " + a.Schema.MessagesTable(params.Topic) +
			" WHERE consumer_group = ? AND " + a.Schema.quote("offset") + " IN (" + in + ")"),
		Args: args,
	}, nil
}

// ConsumedMessageQuery is empty: the row lock marks a message as taken.
func (a QueueOffsetsAdapter) ConsumedMessageQuery(wsql.ConsumedMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{}, nil
}

// NextOffsetQuery is empty: QueueSchema's select needs no offset.
func (a QueueOffsetsAdapter) NextOffsetQuery(wsql.NextOffsetQueryParams) (wsql.Query, error) {
	return wsql.Query{}, nil
}

// countingQueueSchema is QueueSchema for one subscriber, counting the rows
// its last select read: fewer than the batch means the queue held no more
// at that moment.
type countingQueueSchema struct {
	QueueSchema
	rows *atomic.Int64
}

func (s countingQueueSchema) SelectQuery(params wsql.SelectQueryParams) (wsql.Query, error) {
	s.rows.Store(0)
	return s.QueueSchema.SelectQuery(params)
}

func (s countingQueueSchema) UnmarshalMessage(params wsql.UnmarshalMessageParams) (wsql.Row, error) {
	row, err := s.QueueSchema.UnmarshalMessage(params)
	if err == nil {
		s.rows.Add(1)
	}
	return row, err
}

// drained reports whether the last select read fewer rows than a batch.
func (s countingQueueSchema) drained() bool { return s.rows.Load() < int64(s.batch()) }
