package sqldb

import (
	"fmt"
	"strings"
)

// ColumnTypes are the dialect's SQL types for the columns of tables the
// code creates itself (read models, which it rebuilds under new names).
type ColumnTypes struct {
	// ID is a short identifier (a UUID) used as a key.
	ID string
	// Text is up to 1,024 characters of any script.
	Text string
	// Key is up to 254 ASCII bytes compared byte for byte.
	Key string
	// Bool, Time (with microseconds), Int and BigInt are what they say.
	Bool, Time, Int, BigInt string
	// TableOptions follow a CREATE TABLE's column list.
	TableOptions string
}

// Types are the dialect's column types.
func (d Dialect) Types() ColumnTypes {
	switch d.name {
	case MySQL.name:
		return ColumnTypes{ID: "VARCHAR(64)", Text: "VARCHAR(1024)",
			Key: "VARCHAR(254) CHARACTER SET ascii COLLATE ascii_bin", Bool: "BOOLEAN", Time: "DATETIME(6)",
			Int: "INT", BigInt: "BIGINT", TableOptions: " CHARACTER SET utf8mb4"}
	case SQLite.name:
		return ColumnTypes{ID: "TEXT", Text: "TEXT", Key: "TEXT", Bool: "BOOLEAN", Time: "DATETIME",
			Int: "INTEGER", BigInt: "INTEGER"}
	}
	return ColumnTypes{ID: "TEXT", Text: "TEXT", Key: "TEXT", Bool: "BOOLEAN", Time: "TIMESTAMPTZ",
		Int: "INTEGER", BigInt: "BIGINT"}
}

// UpsertNewer is an INSERT of values (SQL expressions, such as ?) into
// table's columns that, when a row with the same key exists, replaces it
// only if the new row's version column is greater: writes of one row may
// then land in any order.
func (d Dialect) UpsertNewer(table, key, version string, columns, values []string) string {
	insert := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(columns, ", "), strings.Join(values, ", "))
	var set []string
	if d.name == MySQL.name {
		// Assignments run left to right and see the ones before: the
		// version is compared before it is updated, last.
		for _, c := range columns {
			if c != key && c != version {
				set = append(set, fmt.Sprintf("%s = IF(VALUES(%s) > %s, VALUES(%s), %s)", c, version, version, c, c))
			}
		}
		set = append(set, fmt.Sprintf("%s = GREATEST(%s, VALUES(%s))", version, version, version))
		return d.Rebind(insert + " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", "))
	}
	for _, c := range columns {
		if c != key {
			set = append(set, fmt.Sprintf("%s = excluded.%s", c, c))
		}
	}
	return d.Rebind(fmt.Sprintf("%s ON CONFLICT (%s) DO UPDATE SET %s WHERE %s.%s < excluded.%s",
		insert, key, strings.Join(set, ", "), table, version, version))
}

// RenameTables are the statements that rename each table from[i] to to[i]
// at once: one atomic statement on MySQL, statements to run in one
// transaction elsewhere.
func (d Dialect) RenameTables(from, to []string) []string {
	if d.name == MySQL.name {
		pairs := make([]string, len(from))
		for i := range from {
			pairs[i] = from[i] + " TO " + to[i]
		}
		return []string{"RENAME TABLE " + strings.Join(pairs, ", ")}
	}
	statements := make([]string, len(from))
	for i := range from {
		statements[i] = fmt.Sprintf("ALTER TABLE %s RENAME TO %s", from[i], to[i])
	}
	return statements
}

// TransactionalDDL reports whether CREATE, ALTER and RENAME take part in
// a transaction (PostgreSQL, SQLite); on MySQL each commits at once.
func (d Dialect) TransactionalDDL() bool { return d.name != MySQL.name }
