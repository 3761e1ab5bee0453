package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"no samples", nil, 99, 0},
		{"one sample", ms(7), 50, 7 * time.Millisecond},
		{"median of 1..10", ms(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), 50, 5 * time.Millisecond},
		{"p95 of 1..100", ms(sequence(100)...), 95, 95 * time.Millisecond},
		{"p99 of 1..10 is the max", ms(sequence(10)...), 99, 10 * time.Millisecond},
		{"p100", ms(3, 1, 2), 100, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, percentile(tt.samples, tt.p))
		})
	}
}

func sequence(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestSink_RecordsFirstDeliveryAndDuplicates(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := startSink(listener)
	t.Cleanup(s.close)

	send := func(to string) {
		t.Helper()
		msg := []byte("Subject: Welcome\r\n\r\nHello\r\n")
		require.NoError(t, smtp.SendMail(listener.Addr().String(), nil, "welcome@onboard.test", []string{to}, msg))
	}
	before := time.Now()
	send("Ada@Example.com")
	first, ok := s.received("ada@example.com")
	require.True(t, ok, "recorded, whatever the case of the address")
	assert.False(t, first.Before(before))
	_, ok = s.received("grace@example.com")
	assert.False(t, ok)

	send("ada@example.com")
	again, _ := s.received("ada@example.com")
	assert.Equal(t, first, again, "the first delivery's time is kept")
	total, duplicated := s.stats()
	assert.Equal(t, 2, total)
	assert.Equal(t, 1, duplicated)
}

func TestBcryptBound_Positive(t *testing.T) {
	perSec, cpuPerHash := bcryptBound(4, 50*time.Millisecond)
	assert.Positive(t, perSec)
	assert.Positive(t, cpuPerHash)
}

func TestCPUMeter_CountsTheServiceProcess(t *testing.T) {
	meter := newCPUMeter(os.Getpid(), []string{"no-such-process-name"})
	before, ownBefore := meter.byName()[serviceProcess], ownCPU()
	for ownCPU()-ownBefore < 300*time.Millisecond { // burn CPU in this process
	}
	used := meter.byName()[serviceProcess] - before
	assert.GreaterOrEqual(t, used, 200*time.Millisecond, "a tick is 10 ms: the meter sees this process's CPU")
}

func TestPollDue_BacksOffWithTheWait(t *testing.T) {
	now := time.Now()
	l := newLoad(options{pointsEvery: 10 * time.Millisecond}, nil, nil)
	fresh := &registration{id: "fresh", created: now.Add(-5 * time.Millisecond)}
	justPolled := &registration{id: "just-polled", created: now.Add(-5 * time.Millisecond), polledAt: now.Add(-5 * time.Millisecond)}
	// Waiting 1 s: due again 100 ms after its last look.
	oldRecent := &registration{id: "old, polled 50 ms ago", created: now.Add(-time.Second), polledAt: now.Add(-50 * time.Millisecond)}
	oldDue := &registration{id: "old, polled 150 ms ago", created: now.Add(-time.Second), polledAt: now.Add(-150 * time.Millisecond)}
	seen := &registration{id: "seen", created: now.Add(-time.Second), pointsAt: now.Add(-time.Millisecond)}
	l.created = []*registration{fresh, justPolled, oldRecent, oldDue, seen}

	var due []string
	for _, r := range l.pollDue(now) {
		due = append(due, r.id)
	}
	assert.Equal(t, []string{"fresh", "old, polled 150 ms ago"}, due)
	assert.Equal(t, now, fresh.polledAt, "marked polled")
	assert.Empty(t, l.pollDue(now), "nothing is due twice at once")
}

func TestFloodOptions_TargetsLoopbackOnly(t *testing.T) {
	o := floodOptions{url: "http://127.0.0.1:8080", conns: 300, rate: 2000, duration: time.Second, maxSent: 10, route: "register",
		idle: time.Second, readRate: 10, registers: 1, clients: "source"}
	require.NoError(t, o.validate())
	for _, target := range []string{"http://10.0.0.1:8080", "http://localhost:8080", "http://example.com", "http://[::1]:8080"} {
		o.url = target
		assert.Error(t, o.validate(), target)
	}
}

// The flood mode against a stand-in for the service that refuses the
// flooder's address: each client is seen at its own address, and every
// answer is counted under its client.
func TestRunFlood_EachClientFromItsOwnAddress(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		seen[host]++
		mu.Unlock()
		switch {
		case r.Method == http.MethodGet:
			_, _ = w.Write([]byte(`{"id":"u"}`))
		case host == flooderAddr.String():
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"u"}`))
		}
	}))
	t.Cleanup(server.Close)

	report, err := runFlood(context.Background(), floodOptions{url: server.URL, conns: 5, rate: 200,
		duration: 300 * time.Millisecond, maxSent: 40, idle: 100 * time.Millisecond, readRate: 50, registers: 2, clients: "source", route: "register"})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"429": report.FloodSent}, report.FloodByStatus)
	assert.LessOrEqual(t, report.FloodSent, 40, "-flood-max bounds the flood")
	assert.Equal(t, 2, report.RegistrarCreated.Samples)
	assert.Equal(t, 2, report.RegistrarIdle.Samples, "the registrar registers alone first")
	assert.Positive(t, report.ReadsIdle.Samples)
	assert.Positive(t, report.ReadsFlooded.Samples)
	mu.Lock()
	defer mu.Unlock()
	for _, addr := range []string{flooderAddr.String(), registrarAddr.String(), readerAddr.String()} {
		assert.Positive(t, seen[addr], "requests from %s", addr)
	}
}

func TestSummarize_RatiosAndTargets(t *testing.T) {
	dir := t.TempDir()
	write := func(label, suffix string, r Report) {
		raw, err := json.Marshal(r)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "bench-"+label+"-"+suffix+".json"), raw, 0o600))
	}
	write("baseline", "max", Report{ShareOfBcryptBound: 0.94, CPUPerRegistrationMs: 3})
	write("baseline", "half", Report{Email: Latencies{P99: 5}, Points: Latencies{P99: 6}})
	write("amqp", "max", Report{ShareOfBcryptBound: 0.94, CPUPerRegistrationMs: 6})
	write("amqp", "half", Report{Email: Latencies{P99: 7.5}, Points: Latencies{P99: 9}, Duplicates: 1})

	var out strings.Builder
	require.NoError(t, summarize(&out, dir, []string{"baseline", "amqp"}))
	table := out.String()
	assert.Contains(t, table, "0.94 (1.00×) ok", "the share meets 0.92 and the baseline")
	assert.Contains(t, table, "6.0 (2.00×) MISSED", "6 ms of CPU misses 5")
	assert.Contains(t, table, "7.5 (1.50×) ok", "the email p99 meets amqp's 8 ms")
	assert.Contains(t, table, "9.0 (1.50×) MISSED", "the points p99 misses it")
	assert.Contains(t, table, "1 MISSED", "a doubled email misses nothing-doubled")

	assert.Error(t, summarize(&out, dir, []string{"sql"}), "a run without its files")
}

func TestReport_FillCPU(t *testing.T) {
	r := Report{Created: 100}
	r.fillCPU(
		map[string]time.Duration{serviceProcess: time.Second, "postgres": time.Second},
		map[string]time.Duration{serviceProcess: 11600 * time.Millisecond, "postgres": 3 * time.Second, "beam.smp": time.Second},
		10*time.Second, true)
	assert.InDelta(t, 6.0, r.CPUPerRegistrationBy[serviceProcess], 0.001, "the service's beside its hashes")
	assert.InDelta(t, 20.0, r.CPUPerRegistrationBy["postgres"], 0.001)
	assert.InDelta(t, 10.0, r.CPUPerRegistrationBy["beam.smp"], 0.001, "a process of the run's alone")
	assert.InDelta(t, 36.0, r.CPUPerRegistrationMs, 0.001)
	assert.InDelta(t, 13.6, r.CPUSeconds, 0.001)
	assert.InDelta(t, 100.0, r.BcryptCPUPerHashMs, 0.001)
	assert.True(t, r.BcryptCPUMeasured)
}

func TestHashCPU_ReadsTheServicesCounter(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("# HELP x\nonboard_password_hash_cpu_seconds_total_other 9\nonboard_password_hash_cpu_seconds_total 1.25\n"))
	}))
	defer server.Close()
	cpu, err := hashCPU(server.Client(), server.URL)
	require.NoError(t, err)
	assert.Equal(t, 1250*time.Millisecond, cpu)

	empty := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer empty.Close()
	_, err = hashCPU(empty.Client(), empty.URL)
	require.ErrorContains(t, err, "has no onboard_password_hash_cpu_seconds_total")
}

func TestSummarizeScale_PoolsTheRoundsOfEachDatabase(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r Report) {
		raw, err := json.Marshal(r)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "bench-scale-"+name+".json"), raw, 0o644))
	}
	// 100 emails of 1 ms a round; the stored users' second round has one
	// slow email, which the pooled p99 of 200 samples does not show.
	emails := func(slow float64) []float64 {
		out := slices.Repeat([]float64{1}, 100)
		out[0] = slow
		return out
	}
	for round, slow := range []float64{1, 1} {
		label := "empty-" + strconv.Itoa(round+1)
		write(label+"-max", Report{Created: 100, Seconds: 4, PeakRSSMiB: 48, ReadyMs: 300})
		write(label+"-half", Report{EmailSamplesMs: emails(slow), ReadSamplesMs: []float64{2, 2}})
	}
	for round, slow := range []float64{1, 50} {
		label := "stored-" + strconv.Itoa(round+1)
		write(label+"-max", Report{Created: 100, Seconds: 5, PeakRSSMiB: 47, ReadyMs: 200})
		write(label+"-half", Report{EmailSamplesMs: emails(slow), ReadSamplesMs: []float64{2, 3}, Duplicates: 1})
	}

	var out strings.Builder
	require.NoError(t, summarizeScale(&out, dir, []string{"empty", "stored"}))
	table := regexp.MustCompile(` +`).ReplaceAllString(out.String(), " ") // the columns' alignment aside
	assert.Contains(t, table, "25.0 20.0 (0.80×) MISSED", "200 registrations in 10 s against 8 s")
	assert.Contains(t, table, "2.0 3.0 (1.50×) MISSED", "the read p99")
	assert.Contains(t, table, "1.0 1.0 (1.00×) ok", "the email p99 of 200 samples: one slow email is the 200th")
	assert.Contains(t, table, "50.3 MISSED 49.3 ok", "RSS under 50 MB: 48 MiB is over, 47 MiB under")
	assert.Contains(t, table, "300.0 ok 200.0 ok", "ready in under 5 s")
	assert.Contains(t, table, "0.0 ok 2.0 MISSED", "a doubled email in each of the stored rounds")

	assert.Error(t, summarizeScale(&out, dir, []string{"empty", "other"}), "a database without runs")
}
