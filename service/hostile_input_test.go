package service

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileCase is one request that must be refused with a 4xx and a code.
type hostileCase struct {
	name        string
	contentType string // application/json when empty
	body        string
	header      map[string]string
	wantStatus  int
	wantCode    string
}

// jsonBody builds a registration body from raw JSON values.
func jsonBody(name, email, password string) string {
	return `{"name":` + name + `,"email":` + email + `,"password":` + password + `}`
}

const (
	okName     = `"Ada Lovelace"`
	okEmail    = `"hostile@example.com"`
	okPassword = `"correct horse battery"`
)

var valid = jsonBody(okName, okEmail, okPassword)

func hostileCases() []hostileCase {
	long := strings.Repeat("a", 10_000)
	const (
		malformed = "malformed-json"
		invalid   = "validation-failed"
	)
	bad := func(name, b string) hostileCase {
		return hostileCase{name: name, body: b, wantStatus: http.StatusBadRequest, wantCode: malformed}
	}
	refused := func(name, b string) hostileCase {
		return hostileCase{name: name, body: b, wantStatus: http.StatusUnprocessableEntity, wantCode: invalid}
	}
	media := func(name, contentType, b string) hostileCase {
		return hostileCase{name: name, contentType: contentType, body: b,
			wantStatus: http.StatusUnsupportedMediaType, wantCode: "unsupported-media-type"}
	}
	return []hostileCase{
		// Malformed and truncated JSON.
		bad("empty body", ""),
		bad("whitespace only", " \n\t "),
		bad("open brace", "{"),
		bad("truncated after a key", `{"name":`),
		bad("truncated string", `{"name":"Ada`),
		bad("missing closing brace", strings.TrimSuffix(valid, "}")),
		bad("trailing comma", strings.TrimSuffix(valid, "}")+",}"),
		bad("single quotes", `{'name':'Ada','email':'ada@example.com','password':'correct horse battery'}`),
		bad("unquoted keys", `{name:"Ada",email:"ada@example.com",password:"correct horse battery"}`),
		bad("comment", `/* hi */`+valid),
		bad("byte order mark", "\ufeff"+valid),
		bad("array", `[`+valid+`]`),
		bad("string", `"`+strings.ReplaceAll(valid, `"`, `\"`)+`"`),
		bad("number", `42`),
		bad("trailing garbage", valid+`garbage`),
		bad("two objects", valid+valid),
		bad("duplicated key", `{"name":"Ada","name":"Eve","email":"hostile@example.com","password":"correct horse battery"}`),
		bad("the same key in another case", strings.TrimSuffix(valid, "}")+`,"Email":"eve@example.com"}`),
		bad("unknown field", strings.TrimSuffix(valid, "}")+`,"admin":true}`),
		// encoding/json matches keys with Unicode case folding: ſ (U+017F) folds to s.
		bad("the same key under Unicode case folding", strings.TrimSuffix(valid, "}")+`,"paſſword":"BBBBBBBBBB"}`),
		bad("the same key folded, escaped", strings.TrimSuffix(valid, "}")+`,"pa\u017f\u017fword":"BBBBBBBBBB"}`),
		bad("a folded key alone", `{"name":"Ada Lovelace","email":"hostile@example.com","paſſword":"correct horse battery"}`),
		bad("a key in upper case alone", `{"NAME":"Ada Lovelace","email":"hostile@example.com","password":"correct horse battery"}`),
		bad("invalid UTF-8", jsonBody(`"Ada `+"\xff\xfe"+`"`, okEmail, okPassword)),
		bad("deep nesting", jsonBody(strings.Repeat(`{"a":`, 1000)+`1`+strings.Repeat(`}`, 1000), okEmail, okPassword)),
		// Wrong types.
		bad("name is a number", jsonBody(`123`, okEmail, okPassword)),
		bad("name is true", jsonBody(`true`, okEmail, okPassword)),
		bad("email is an array", jsonBody(okName, `["a@example.com"]`, okPassword)),
		bad("email is an object", jsonBody(okName, `{"address":"a@example.com"}`, okPassword)),
		bad("password is a number", jsonBody(okName, okEmail, `12345678`)),
		bad("huge number", jsonBody(`1e400`, okEmail, okPassword)),
		bad("huge integer", jsonBody(okName, okEmail, `123456789012345678901234567890`)),
		bad("huge number in an unknown field", strings.TrimSuffix(valid, "}")+`,"points":1e999}`),
		// Nulls and missing fields.
		refused("null body", `null`),
		refused("empty object", `{}`),
		refused("null name", jsonBody(`null`, okEmail, okPassword)),
		refused("null email", jsonBody(okName, `null`, okPassword)),
		refused("null password", jsonBody(okName, okEmail, `null`)),
		refused("empty strings", jsonBody(`""`, `""`, `""`)),
		refused("blank name", jsonBody(`"   "`, okEmail, okPassword)),
		// Sizes.
		refused("10k-character name", jsonBody(`"`+long+`"`, okEmail, okPassword)),
		refused("10k-character email", jsonBody(okName, `"`+long+`@example.com"`, okPassword)),
		refused("10k-character password", jsonBody(okName, okEmail, `"`+long+`"`)),
		refused("password too short", jsonBody(okName, okEmail, `"short"`)),
		refused("password of 7 two-byte characters", jsonBody(okName, okEmail, `"éàüöñçø"`)),
		refused("password of 65 characters", jsonBody(okName, okEmail, `"`+strings.Repeat("Xk9#mQ2$", 8)+`x"`)),
		refused("lone surrogate in the password", jsonBody(okName, okEmail, `"correct horse \ud800 battery"`)),
		refused("NUL in the password", jsonBody(okName, okEmail, `"correct horse\u0000battery"`)),
		refused("common password", jsonBody(okName, okEmail, `"password1"`)),
		refused("the user's name as the password", jsonBody(okName, okEmail, `"ada lovelace 1815"`)),
		refused("one character 64 times as the password", jsonBody(okName, okEmail, `"`+strings.Repeat("A", 64)+`"`)),
		{name: "body over 64 KiB", body: jsonBody(`"`+strings.Repeat("a", 70_000)+`"`, okEmail, okPassword),
			wantStatus: http.StatusRequestEntityTooLarge, wantCode: "body-too-large"},
		// Characters that spoof, hide or forge.
		refused("emoji email", jsonBody(okName, `"😀@example.com"`, okPassword)),
		refused("emoji joined by ZWJ in the name", jsonBody(`"Ada 👩‍💻"`, okEmail, okPassword)),
		refused("right-to-left override in the name", jsonBody(`"Ada \u202eecalevoL"`, okEmail, okPassword)),
		refused("right-to-left mark in the email", jsonBody(okName, `"ada\u200f@example.com"`, okPassword)),
		refused("zero-width space in the name", jsonBody(`"Ada\u200bLovelace"`, okEmail, okPassword)),
		refused("zero-width joiner in the email", jsonBody(okName, `"ada\u200d@example.com"`, okPassword)),
		refused("lone surrogate in the name", jsonBody(`"Ada \ud800"`, okEmail, okPassword)),
		refused("NUL in the name", jsonBody(`"Ada\u0000"`, okEmail, okPassword)),
		refused("CR LF header in the name", jsonBody(`"Ada\r\nBcc: eve@evil.test"`, okEmail, okPassword)),
		refused("CR LF header in the email", jsonBody(okName, `"hostile@example.com\r\nBcc: eve@evil.test"`, okPassword)),
		refused("LF in the email", jsonBody(okName, `"hostile@example.com\nX-Evil: 1"`, okPassword)),
		refused("line separator in the name", jsonBody(`"Ada\u2028Lovelace"`, okEmail, okPassword)),
		refused("Hangul filler as the name", jsonBody(`"\u3164"`, okEmail, okPassword)),
		refused("Braille blank as the name", jsonBody(`"\u2800\u2800"`, okEmail, okPassword)),
		refused("zero-width non-joiner after a space in the name", jsonBody(`"Ada \u200cLovelace"`, okEmail, okPassword)),
		refused("99 stacked marks in the name", jsonBody(`"Z`+strings.Repeat(`\u0336`, 99)+`"`, okEmail, okPassword)),
		refused("no letter in the name", jsonBody(`"+1 555 0100"`, okEmail, okPassword)),
		refused("display name in the email", jsonBody(okName, `"Ada <hostile@example.com>"`, okPassword)),
		refused("two addresses", jsonBody(okName, `"hostile@example.com, eve@evil.test"`, okPassword)),
		// Addresses a relay would route elsewhere, or no public host.
		refused("percent routing in the email", jsonBody(okName, `"eve%evil.test@example.com"`, okPassword)),
		refused("encoded word in the email", jsonBody(okName, `"=?utf-8?q?eve=40evil.test?=@example.com"`, okPassword)),
		refused("IP literal in the email", jsonBody(okName, `"hostile@[127.0.0.1]"`, okPassword)),
		refused("IP address in the email", jsonBody(okName, `"hostile@127.0.0.1"`, okPassword)),
		refused("localhost in the email", jsonBody(okName, `"hostile@localhost"`, okPassword)),
		refused("65-byte local part", jsonBody(okName, `"`+strings.Repeat("h", 65)+`@example.com"`, okPassword)),
		// SQL injection where it is not a valid value.
		refused("SQL injection in the email", jsonBody(okName, `"x' OR '1'='1@example.com"`, okPassword)),
		refused("SQL statement after the email", jsonBody(okName, `"hostile@example.com'; DROP TABLE events; --"`, okPassword)),
		// Content types.
		media("text/plain", "text/plain", valid),
		media("no content type", "-", valid),
		media("form", "application/x-www-form-urlencoded", "name=Ada&email=hostile%40example.com&password=correct+horse+battery"),
		media("multipart", "multipart/form-data; boundary=x", "--x\r\n\r\n"+valid+"\r\n--x--"),
		media("malformed content type", "application/", valid),
		// Headers.
		{name: "Idempotency-Key with a space", body: valid, header: map[string]string{"Idempotency-Key": "key with space"},
			wantStatus: http.StatusBadRequest, wantCode: "invalid-idempotency-key"},
	}
}

// TestService_HostileInput: every hostile request gets its 4xx and error
// code, never a 5xx or a panic, and writes nothing at all. SQLite always
// runs; PostgreSQL when its variable is set.
func TestService_HostileInput(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) { testHostileInput(t, startServiceOnSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { testHostileInput(t, startService(t)) })
}

func testHostileInput(t *testing.T, s *runningService) {
	cases := hostileCases()
	require.GreaterOrEqual(t, len(cases), 50)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			contentType := tc.contentType
			if contentType == "" {
				contentType = "application/json"
			}
			status, _, body := s.postRaw(tc.body, contentType, tc.header)
			assert.Equal(t, tc.wantStatus, status, "%s", body)
			assert.Equal(t, tc.wantCode, errorCode(t, body))
			assert.NotContains(t, string(body), "hostile@example.com", "the input is not echoed")
		})
	}
	for _, path := range []string{"/users/1%20OR%201=1", "/users/'--", "/users/" + strings.Repeat("9", 5000),
		"/users/%00/points"} {
		status, body := s.get(path)
		assert.Equal(t, http.StatusBadRequest, status, "GET %s: %s", path, body)
		assert.Equal(t, "invalid-id", errorCode(t, body), "GET %s", path)
	}

	// A SQL-injection-looking name is just a name: stored as sent.
	status, _, body := s.postRaw(jsonBody(`"Robert'); DROP TABLE events;--"`, `"bobby@example.com"`, okPassword), "application/json", nil)
	require.Equal(t, http.StatusCreated, status, "%s", body)

	assert.Equal(t, 1, s.count(`SELECT count(*) FROM events`), "only the last registration was written")
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM credentials`))
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM user_emails`))
	require.Eventually(t, func() bool { return s.mailer.Count() == 1 }, serviceWait, 20*time.Millisecond)
	assert.Empty(t, s.mailer.To("eve@evil.test"), "no injected recipient")
	s.stop()
	assert.NotContains(t, s.logs.String(), "panic")
}
