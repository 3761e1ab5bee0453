package sqldb

// SecondsSince is an SQL expression of the seconds from the time column
// (or aggregate) expr to the database's clock now, as a float; NULL when
// expr is NULL. Reading ages by the database's own clock keeps them true
// whatever the clock of the reader.
func (d Dialect) SecondsSince(expr string) string {
	switch d.name {
	case MySQL.name:
		return "TIMESTAMPDIFF(MICROSECOND, " + expr + ", CURRENT_TIMESTAMP(6)) / 1000000.0"
	case SQLite.name: // timestamps are ISO 8601 text, in UTC
		return "(julianday('now') - julianday(" + expr + ")) * 86400.0"
	}
	return "CAST(EXTRACT(EPOCH FROM (clock_timestamp() - " + expr + ")) AS DOUBLE PRECISION)"
}
