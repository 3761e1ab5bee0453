package main

// End-to-end tests: the built binary against real databases (PostgreSQL,
// MySQL/MariaDB, SQLite), RabbitMQ and SMTP servers, driven over HTTP only.
// The harness is internal/e2e; the scenarios are the *_e2e_test.go files,
// crash_test.go and, behind the chaos build tag, chaos*_test.go. Each
// deployment has a PUBSUB_NAMESPACE of its own, so the tests run in parallel.

import (
	"fmt"
	"testing"

	"github.com/onboard/onboard/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// newUsers returns n users of a test, each with an address and password of
// its own: "<prefix>NN.<run>@example.com".
func newUsers(prefix, run string, n int) []e2e.User {
	users := make([]e2e.User, n)
	for i := range users {
		users[i] = e2e.User{
			Name:     fmt.Sprintf("User %s %02d", prefix, i),
			Email:    fmt.Sprintf("%s%02d.%s@example.com", prefix, i, run),
			Password: fmt.Sprintf("pw-%s-%02d-%s", prefix, i, run),
		}
	}
	return users
}
