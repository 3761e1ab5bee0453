package watermillsql

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/onboard/onboard/adapters/sqldb"
)

// Backlog is what waits for a consumer group on a topic.
type Backlog struct {
	// Messages not acked yet, those a subscriber holds included.
	Messages int64
	// OldestAge is the age of the oldest of them, by the database's
	// clock; 0 when there is none.
	OldestAge time.Duration
}

// GroupBacklog reads, from the topic's table on db, the messages group has
// not acked and the age of the oldest: on PostgreSQL and MySQL the group's
// rows of the queue (QueueSchema), on SQLite the rows past the group's
// acked offset. A topic whose table was never created has none.
func GroupBacklog(ctx context.Context, db *sql.DB, topic, group string) (Backlog, error) {
	d := sqldb.Of(db)
	a := adaptersOf(d)
	offset := d.Quote("offset")
	query := "SELECT COUNT(*), " + d.SecondsSince("MIN(created_at)") + " FROM " + d.Quote(MessagesTable(db, topic))
	if a.groupQueues {
		query += " WHERE consumer_group = ?"
	} else {
		query += " WHERE " + offset + " > COALESCE((SELECT offset_acked FROM " +
			SQLiteOffsetsAdapter{}.MessagesOffsetsTable(topic) + " WHERE consumer_group = ?), 0)"
	}
	var (
		b   Backlog
		age sql.NullFloat64
	)
	err := db.QueryRowContext(ctx, d.Rebind(query), group).Scan(&b.Messages, &age)
	if d.IsMissingTable(err) {
		return Backlog{}, nil
	}
	if err != nil {
		return Backlog{}, fmt.Errorf("backlog of %s on %s: %w", group, topic, err)
	}
	if age.Valid && age.Float64 > 0 {
		b.OldestAge = time.Duration(age.Float64 * float64(time.Second))
	}
	return b, nil
}
