package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// InsertRows inserts the rows, in d's placeholders, (each a value per column of columns, a
// comma-separated list) into table in one statement.
func InsertRows(ctx context.Context, tx *sql.Tx, d Dialect, table, columns string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(rows[0])), ", ") + ")"
	args := make([]any, 0, len(rows)*len(rows[0]))
	for _, r := range rows {
		args = append(args, r...)
	}
	query := `INSERT INTO ` + table + ` (` + columns + `) VALUES ` + strings.TrimSuffix(strings.Repeat(row+", ", len(rows)), ", ")
	if _, err := tx.ExecContext(ctx, d.Rebind(query), args...); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return nil
}
