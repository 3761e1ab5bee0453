package watermillsql

import (
	"database/sql"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

// AckMark starts an ack's query, which a pipelined transaction sends
// with its COMMIT.
const AckMark = ackMark

// PipelinedBeginner is the Beginner of subscribers on PostgreSQL.
func PipelinedBeginner(db *sql.DB) wsql.Beginner { return newPipelinedBeginner(db) }
