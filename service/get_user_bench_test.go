package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testfake"
)

// getUsersPerKind is how many users of each kind, sealed and plain, the
// GETs go round.
const getUsersPerKind = 20

// BenchmarkGetUser_SealedVsPlain: GET /users/{id} with the user's session,
// through the service's HTTP handler (in process: no network), on each
// database, of users whose read model rows are sealed under their keys
// and of users whose rows are plain, as an older version wrote them (no
// key: today's cost before encryption), interleaved in one run: each
// iteration reads one of each, in turns first. It reports each kind's p50
// and p99 and the ratio of the p99s (the target: at most 1.10),
// beside the ratio of the p99s of two halves of the plain reads alone
// (iterations 0-1, 4-5… against 2-3, 6-7…): what the same code measures
// against itself in that run, the spread of the tail on this machine.
// A p99 of 100,000 iterations has 1,000 reads beyond it:
//
//	go test -run '^$' -bench GetUser_SealedVsPlain -benchtime 100000x ./service/
//
// PostgreSQL and MySQL run when their URLs are set, as for the tests.
func BenchmarkGetUser_SealedVsPlain(b *testing.B) {
	for _, backend := range testenv.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			dbURL := backend.URL(b)
			db := testenv.OpenDB(b, dbURL)
			svc, err := New(context.Background(), Config{
				PubSub: "gochannel", DatabaseURL: dbURL, HTTPAddr: "127.0.0.1:0", MailFrom: DefaultMailFrom,
				// The hashes are made once, before the timed reads.
				BcryptCost: bcrypt.MinCost, SignupPoints: 100, MasterKeys: testMasterKeys(b, dbURL),
			}, &testfake.Mailer{}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(svc.closeResources)
			api := svc.server.Handler

			sealed := registerOverHTTP(b, api, "sealed", getUsersPerKind)
			plain := registerOverHTTP(b, api, "plain", getUsersPerKind)
			for _, u := range plain {
				_, err := db.ExecContext(context.Background(), db.Rebind(`UPDATE users SET name = ?, email = ? WHERE user_id = ?`),
					u.name, u.email, u.id)
				if err != nil {
					b.Fatal(err)
				}
				_, err = db.ExecContext(context.Background(), db.Rebind(`DELETE FROM user_keys WHERE user_id = ?`), u.id)
				if err != nil {
					b.Fatal(err)
				}
			}
			if n := db.Count(b, `SELECT count(*) FROM user_keys`); n != getUsersPerKind {
				b.Fatalf("%d users have a key, want the %d sealed ones", n, getUsersPerKind)
			}

			var sealedTimes, plainTimes []time.Duration
			var plainHalves [2][]time.Duration
			i := 0
			for b.Loop() {
				s, p := sealed[i%len(sealed)], plain[i%len(plain)]
				var plainTime time.Duration
				if i%2 == 0 {
					sealedTimes = append(sealedTimes, getUser(b, api, s))
					plainTime = getUser(b, api, p)
				} else {
					plainTime = getUser(b, api, p)
					sealedTimes = append(sealedTimes, getUser(b, api, s))
				}
				plainTimes = append(plainTimes, plainTime)
				plainHalves[i/2%2] = append(plainHalves[i/2%2], plainTime)
				i++
			}
			sealedP99, plainP99 := testenv.Percentile(sealedTimes, 0.99), testenv.Percentile(plainTimes, 0.99)
			b.ReportMetric(testenv.Milliseconds(testenv.Percentile(sealedTimes, 0.50)), "sealed-p50-ms")
			b.ReportMetric(testenv.Milliseconds(sealedP99), "sealed-p99-ms")
			b.ReportMetric(testenv.Milliseconds(testenv.Percentile(plainTimes, 0.50)), "plain-p50-ms")
			b.ReportMetric(testenv.Milliseconds(plainP99), "plain-p99-ms")
			b.ReportMetric(float64(sealedP99)/float64(plainP99), "sealed/plain-p99")
			b.ReportMetric(float64(testenv.Percentile(plainHalves[0], 0.99))/float64(testenv.Percentile(plainHalves[1], 0.99)),
				"plain-halves-p99")
		})
	}
}

// apiUser is a user registered over the API, with its session.
type apiUser struct{ id, name, email, token string }

// registerOverHTTP registers n users with POST /users, each with the
// session its registration opens.
func registerOverHTTP(b *testing.B, api http.Handler, prefix string, n int) []apiUser {
	b.Helper()
	users := make([]apiUser, n)
	for i := range users {
		u := apiUser{name: "Bench User", email: fmt.Sprintf("%s%d@example.com", prefix, i)}
		body, _ := json.Marshal(map[string]string{"name": u.name, "email": u.email, "password": "correct horse battery staple"})
		req := httptest.NewRequest(http.MethodPost, "/users", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			b.Fatalf("POST /users: %d %s", rec.Code, rec.Body)
		}
		var created struct {
			ID      string `json:"id"`
			Session struct {
				Token string `json:"token"`
			} `json:"session"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
			b.Fatal(err)
		}
		u.id, u.token = created.ID, created.Session.Token
		users[i] = u
	}
	return users
}

// getUser times GET /users/{id} with the user's session, and checks that
// it answers the user's name and address.
func getUser(b *testing.B, api http.Handler, u apiUser) time.Duration {
	req := httptest.NewRequest(http.MethodGet, "/users/"+u.id, nil)
	req.Header.Set("Authorization", "Bearer "+u.token)
	rec := httptest.NewRecorder()
	start := time.Now()
	api.ServeHTTP(rec, req)
	elapsed := time.Since(start)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET /users/%s: %d %s", u.id, rec.Code, rec.Body)
	}
	var got struct{ Name, Email string }
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		b.Fatal(err)
	}
	if got.Name != u.name || got.Email != u.email {
		b.Fatalf("GET /users/%s: %q <%s>, want %q <%s>", u.id, got.Name, got.Email, u.name, u.email)
	}
	return elapsed
}
