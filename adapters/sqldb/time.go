package sqldb

import "time"

// AsTime reads a timestamp as the drivers return it: a time, or SQLite's
// text.
func AsTime(v any) (time.Time, bool) {
	switch v := v.(type) {
	case time.Time:
		return v, true
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		return t, err == nil
	case []byte:
		t, err := time.Parse(time.RFC3339Nano, string(v))
		return t, err == nil
	}
	return time.Time{}, false
}
