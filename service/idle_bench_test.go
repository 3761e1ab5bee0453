package service

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testfake"
)

// idleWindow is how long the idle service is watched.
const idleWindow = 10 * time.Second

// BenchmarkIdleDatabaseCPU: an idle service still polls its database. The
// benchmark runs the service with nothing to do and reports the CPU the
// PostgreSQL server's processes spent meanwhile, as a share of one core. It
// reads /proc, so the server must run on this machine.
//
//	go test -run '^$' -bench IdleDatabaseCPU -benchtime 1x ./service/
func BenchmarkIdleDatabaseCPU(b *testing.B) {
	for _, pubsub := range []string{transport.KindSQL, transport.KindAMQP} {
		b.Run(pubsub, func(b *testing.B) {
			for b.Loop() {
				ctx, cancel := context.WithCancel(context.Background())
				svc := benchService(ctx, b, benchConfig(b, newBenchSetup(b, pubsub)), &testfake.Mailer{})
				done := make(chan error, 1)
				go func() { done <- svc.Run(ctx) }()
				waitReady(b, svc)
				before := postgresCPU(b)
				time.Sleep(idleWindow) // the measurement window itself
				share := (postgresCPU(b) - before).Seconds() / idleWindow.Seconds()
				cancel()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(share*100, "%-of-a-core")
				b.Logf("idle service on PUBSUB=%s: PostgreSQL used %.2f %% of a core over %s", pubsub, share*100, idleWindow)
			}
		})
	}
}

// waitReady waits until the service answers /readyz with 200, its start-up
// queries done.
func waitReady(b *testing.B, svc *Service) {
	b.Helper()
	deadline := time.Now().Add(serviceWait)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + svc.Addr() + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	b.Fatal("the service did not get ready")
}

// postgresCPU is the CPU time (user + system) of every process named
// postgres on this machine.
func postgresCPU(b *testing.B) time.Duration {
	b.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		b.Fatal(err)
	}
	var ticks int64
	found := false
	for _, path := range stats {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // the process ended
		}
		// pid (comm) state ppid …: comm may hold spaces, so split after ')'.
		text := string(raw)
		open, end := strings.IndexByte(text, '('), strings.LastIndexByte(text, ')')
		if open < 0 || end < open || text[open+1:end] != "postgres" {
			continue
		}
		fields := strings.Fields(text[end+1:])
		if len(fields) < 13 {
			continue
		}
		user, _ := strconv.ParseInt(fields[11], 10, 64)
		system, _ := strconv.ParseInt(fields[12], 10, 64)
		ticks += user + system
		found = true
	}
	if !found {
		b.Skip("no PostgreSQL process on this machine: the idle cost cannot be read")
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}
