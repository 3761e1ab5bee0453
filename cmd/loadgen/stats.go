package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// percentile returns the p-th percentile (0 < p ≤ 100) of samples by the
// nearest-rank method; 0 without samples. samples is sorted in place.
func percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	rank := int(float64(len(samples))*p/100+0.999999) - 1
	return samples[min(max(rank, 0), len(samples)-1)]
}

// Latencies are the p50, p95, p99 and maximum of one kind of sample, in ms.
type Latencies struct {
	P50, P95, P99, Max float64
	Samples            int
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// samplesMs is samples in milliseconds.
func samplesMs(samples []time.Duration) []float64 {
	out := make([]float64, len(samples))
	for i, d := range samples {
		out[i] = ms(d)
	}
	return out
}

func latencies(samples []time.Duration) Latencies {
	return Latencies{
		P50: ms(percentile(samples, 50)), P95: ms(percentile(samples, 95)), P99: ms(percentile(samples, 99)),
		Max: ms(percentile(samples, 100)), Samples: len(samples),
	}
}

// bcryptBound hashes on every core for d and returns hashes/s and the CPU
// time of one hash.
func bcryptBound(cost int, d time.Duration) (perSec float64, cpuPerHash time.Duration) {
	var hashes atomic.Int64
	deadline := time.Now().Add(d)
	start, startCPU := time.Now(), ownCPU()
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if _, err := bcrypt.GenerateFromPassword([]byte("correct horse battery"), cost); err == nil {
					hashes.Add(1)
				}
			}
		})
	}
	wg.Wait()
	n := hashes.Load()
	if n == 0 {
		return 0, 0
	}
	return float64(n) / time.Since(start).Seconds(), (ownCPU() - startCPU) / time.Duration(n)
}

// peakRSSMiB reads a process's peak resident set size (VmHWM); 0 if unknown.
func peakRSSMiB(pid int) float64 {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(fields[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// Report holds the figures of one run.
type Report struct {
	Mode              string
	Sent, Created     int
	Failed            map[string]int // by status or error
	Seconds           float64
	RegistrationsPerS float64
	Created201        Latencies
	Email, Points     Latencies
	// Read is GET /users/{id} of a user of the run, with -reads-every.
	Read        Latencies
	FailedReads int
	// EmailSamplesMs and ReadSamplesMs are every sample of Email and
	// Read, with -samples, so that runs can be pooled.
	EmailSamplesMs []float64 `json:",omitempty"`
	ReadSamplesMs  []float64 `json:",omitempty"`
	// PointsPolledEveryMs bounds how late a user's points are seen.
	PointsPolledEveryMs float64
	Emails, Duplicates  int
	MissingEmails       int
	MissingPoints       int
	BcryptCost          int
	BcryptHashesPerSec  float64
	ShareOfBcryptBound  float64
	PeakRSSMiB          float64
	// ReadyMs is how long the service took from its start to ready, as the
	// caller measured it (-ready-ms).
	ReadyMs float64 `json:",omitempty"`
	// CPU is measured with -cpu-of: the CPU time of the service and the
	// named processes from the first send until every effect was seen,
	// and what it comes to per 201 beside the bcrypt hash it made, in all
	// and by process name (the service's beside its hash).
	CPUSeconds         float64
	BcryptCPUPerHashMs float64
	// BcryptCPUMeasured: the service counted its bcrypt CPU
	// (onboard_password_hash_cpu_seconds_total, -metrics); else it is
	// the load generator's idle hash times the 201s.
	BcryptCPUMeasured    bool
	CPUPerRegistrationMs float64
	CPUPerRegistrationBy map[string]float64 `json:",omitempty"`
}

// fillCPU computes the CPU figures from the processes' CPU times before and
// after the run, less bcrypt, which took bcryptCPU in all: as the service
// measured it (measured), or its idle hash's CPU times the 201s.
func (r *Report) fillCPU(before, after map[string]time.Duration, bcryptCPU time.Duration, measured bool) {
	r.BcryptCPUPerHashMs = ms(bcryptCPU / time.Duration(r.Created))
	r.BcryptCPUMeasured = measured
	r.CPUPerRegistrationBy = map[string]float64{}
	var used time.Duration
	for name, d := range after {
		d -= before[name]
		used += d
		if name == serviceProcess {
			d -= bcryptCPU
		}
		r.CPUPerRegistrationBy[name] = ms(d / time.Duration(r.Created))
	}
	r.CPUSeconds = used.Seconds()
	r.CPUPerRegistrationMs = ms((used - bcryptCPU) / time.Duration(r.Created))
}

func (r Report) print(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(name, format string, args ...any) { _, _ = fmt.Fprintf(w, name+"\t"+format+"\n", args...) }
	lat := func(l Latencies) string {
		return fmt.Sprintf("%.1f / %.1f / %.1f ms (%d)", l.P50, l.P95, l.P99, l.Samples)
	}
	row("mode", "%s", r.Mode)
	row("registrations sent", "%d in %.1f s", r.Sent, r.Seconds)
	row("201s", "%d", r.Created)
	for reason, n := range r.Failed {
		row("  not 201: "+reason, "%d", n)
	}
	row("registrations/s (201s)", "%.1f", r.RegistrationsPerS)
	row("bcrypt bound", "%.1f hashes/s at cost %d on %d cores", r.BcryptHashesPerSec, r.BcryptCost, runtime.GOMAXPROCS(0))
	row("share of the bcrypt bound", "%.0f %%", r.ShareOfBcryptBound*100)
	row("201 latency p50/p95/p99", "%s", lat(r.Created201))
	row("201 → email p50/p95/p99", "%s", lat(r.Email))
	row("201 → points p50/p95/p99", "%s (polled every %s or 10 %% of the wait)", lat(r.Points),
		time.Duration(r.PointsPolledEveryMs*float64(time.Millisecond)))
	if r.Read.Samples > 0 || r.FailedReads > 0 {
		row("GET /users/{id} p50/p95/p99", "%s, %d not 200", lat(r.Read), r.FailedReads)
	}
	row("emails received", "%d, %d recipients twice or more", r.Emails, r.Duplicates)
	row("missing effects", "%d emails, %d grants", r.MissingEmails, r.MissingPoints)
	if r.CPUPerRegistrationBy != nil {
		names := make([]string, 0, len(r.CPUPerRegistrationBy))
		for name, perRegistration := range r.CPUPerRegistrationBy {
			names = append(names, fmt.Sprintf("%s %.1f", name, perRegistration))
		}
		sort.Strings(names)
		source := "estimated from the bound"
		if r.BcryptCPUMeasured {
			source = "as the service counted it"
		}
		row("CPU beside bcrypt per 201", "%.1f ms (%s; %.1f s in all, less %.1f ms of bcrypt per 201, %s)",
			r.CPUPerRegistrationMs, strings.Join(names, ", "), r.CPUSeconds, r.BcryptCPUPerHashMs, source)
	}
	if r.PeakRSSMiB > 0 {
		row("service peak RSS", "%.1f MiB", r.PeakRSSMiB)
	}
	if r.ReadyMs > 0 {
		row("service start to ready", "%.0f ms", r.ReadyMs)
	}
	_ = w.Flush()
}
