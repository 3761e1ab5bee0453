package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is the unit of /proc/<pid>/stat's CPU times (USER_HZ), 100
// on every Linux architecture Go runs on.
const clockTicks = 100

// cpuMeter sums the CPU time of the service's process and of every process
// with one of the given names (the database's, the broker's), their reaped
// children included: a PostgreSQL backend that exits during the run is
// counted in its postmaster.
type cpuMeter struct {
	pid   int
	names map[string]bool
}

func newCPUMeter(pid int, names []string) *cpuMeter {
	m := &cpuMeter{pid: pid, names: map[string]bool{}}
	for _, name := range names {
		m.names[name] = true
	}
	return m
}

// serviceProcess names the service's process in cpuMeter.byName.
const serviceProcess = "the service"

// byName is the CPU time used so far by the service's process and by the
// processes of each name.
func (m *cpuMeter) byName() map[string]time.Duration {
	ticks := map[string]int64{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid …: comm may hold spaces, so split after ")".
		open, closing := strings.IndexByte(string(raw), '('), strings.LastIndexByte(string(raw), ')')
		if open < 0 || closing < open {
			continue
		}
		name := string(raw[open+1 : closing])
		switch {
		case pid == m.pid:
			name = serviceProcess
		case !m.names[name]:
			continue
		}
		fields := strings.Fields(string(raw[closing+1:]))
		// fields[0] is the state (stat's field 3): utime, stime, cutime and
		// cstime are stat's fields 14 to 17.
		for _, f := range fields[11:15] {
			n, _ := strconv.ParseInt(f, 10, 64)
			ticks[name] += n
		}
	}
	out := map[string]time.Duration{}
	for name, n := range ticks {
		out[name] = time.Duration(n) * time.Second / clockTicks
	}
	return out
}

// ownCPU is the CPU time this process has used so far.
func ownCPU() time.Duration {
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// hashCPUSeries is the service's counter of the CPU its bcrypt took.
const hashCPUSeries = "onboard_password_hash_cpu_seconds_total"

// hashCPU reads hashCPUSeries from the Prometheus text at metricsURL.
func hashCPU(client *http.Client, metricsURL string) (time.Duration, error) {
	resp, err := client.Get(metricsURL)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s answered %d", metricsURL, resp.StatusCode)
	}
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), hashCPUSeries+" "); ok {
			seconds, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", hashCPUSeries, err)
			}
			return time.Duration(seconds * float64(time.Second)), nil
		}
	}
	if err := scanner.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s has no %s", metricsURL, hashCPUSeries)
}
