package service

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onboard/onboard/internal/testenv"
)

// cpuMeter reads, in /proc, the CPU time of this process (the service, and
// the benchmark's polls beside it) and of the PostgreSQL backends serving
// one database but the benchmark's own connection; a backend that exits
// counts up to its last sample. On a machine whose /proc does not show
// them (another system, a server elsewhere), it knows nothing.
type cpuMeter struct {
	b        *testing.B
	db       *testenv.DB
	ownPID   int
	self     time.Duration
	backends map[int][2]time.Duration // CPU at the start (or zero) and at the last sight
	known    bool
	started  bool
}

func startCPUMeter(b *testing.B, db *testenv.DB) *cpuMeter {
	b.Helper()
	db.SetMaxOpenConns(1) // one backend of the benchmark's own
	m := &cpuMeter{b: b, db: db, backends: map[int][2]time.Duration{}}
	if err := db.QueryRow(`SELECT pg_backend_pid()`).Scan(&m.ownPID); err != nil {
		b.Fatal(err)
	}
	m.self, m.known = processCPU(os.Getpid())
	m.sample()
	m.started = true
	return m
}

// sample reads the CPU time of the database's backends.
func (m *cpuMeter) sample() {
	if !m.known {
		return
	}
	rows, err := m.db.Query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> $1`, m.ownPID)
	if err != nil {
		m.b.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			m.b.Fatal(err)
		}
		cpu, ok := processCPU(pid)
		if !ok {
			continue // it exited, or runs elsewhere
		}
		seen, found := m.backends[pid]
		if !found && !m.started {
			seen[0] = cpu // serving already: counted from the start; one started since, from zero
		}
		seen[1] = cpu
		m.backends[pid] = seen
	}
	if err := rows.Err(); err != nil {
		m.b.Fatal(err)
	}
}

// stop samples a last time and returns the CPU time of this process and
// of the backends since the start.
func (m *cpuMeter) stop() (self, backends time.Duration, known bool) {
	m.sample()
	now, ok := processCPU(os.Getpid())
	if !m.known || !ok || len(m.backends) == 0 {
		return 0, 0, false
	}
	for _, seen := range m.backends {
		backends += seen[1] - seen[0]
	}
	return now - m.self, backends, true
}

// processCPU is the CPU time (user + system) of the process pid, from
// /proc; false where /proc does not show it.
func processCPU(pid int) (time.Duration, bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// pid (comm) state ppid …: comm may hold spaces, so split after ')'.
	text := string(raw)
	fields := strings.Fields(text[strings.LastIndexByte(text, ')')+1:])
	if len(fields) < 13 {
		return 0, false
	}
	user, _ := strconv.ParseInt(fields[11], 10, 64)
	system, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(user+system) * time.Second / 100, true // USER_HZ is 100 on Linux
}
