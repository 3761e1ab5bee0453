package ports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// checkKeys rejects an object with a key that is not, byte for byte, the
// JSON name of one of into's fields, or a key named twice. encoding/json
// matches keys case-insensitively with Unicode folding ("PASSWORD",
// "paſſword" with U+017F all fill Password) and keeps the last value, so
// one field could otherwise arrive twice under two spellings. Malformed
// JSON is left for the decoder to report.
func checkKeys(body []byte, into any) error {
	names := jsonNames(into)
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		switch {
		case !names[key]:
			return fmt.Errorf("unknown key %q", key)
		case seen[key]:
			return fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

// jsonNames returns the JSON names of the fields of the struct into points
// to (flat structs only: the request bodies have no embedded fields).
func jsonNames(into any) map[string]bool {
	names := map[string]bool{}
	t := reflect.TypeOf(into)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return names
	}
	for field := range t.Fields() {
		tag := field.Tag.Get("json")
		if !field.IsExported() || tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = field.Name
		}
		names[name] = true
	}
	return names
}

// decodeJSON reads exactly one JSON object from a size-capped body: valid
// UTF-8, every key exactly one of into's and at most once, nothing after it.
func decodeJSON(c *gin.Context, into any) bool {
	if c.Request.ContentLength > MaxBodyBytes {
		writeError(c, http.StatusRequestEntityTooLarge, "body-too-large", "the body is larger than 64 KiB", nil)
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
	if err == nil && !utf8.Valid(body) {
		err = errors.New("the body is not UTF-8")
	}
	if err == nil {
		err = checkKeys(body, into)
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err = dec.Decode(into)
		if err == nil {
			if _, extra := dec.Token(); extra != io.EOF {
				err = errors.New("trailing data after the JSON object")
			}
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(c, http.StatusRequestEntityTooLarge, "body-too-large", "the body is larger than 64 KiB", nil)
		return false
	case err != nil:
		writeError(c, http.StatusBadRequest, "malformed-json", "the body is not a valid JSON object of the expected shape", nil)
		return false
	}
	return true
}
