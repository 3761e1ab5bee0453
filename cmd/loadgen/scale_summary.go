package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// The targets at a million stored users, beside an empty database in the
// same run (scripts/bench-scale.sh).
const (
	targetScaleRatio   = 0.10 // registrations/s, GET /users/{id} p99, 201 → email p99
	targetScaleRSSMB   = 50.0 // the MB: 10^6 bytes, 47.7 MiB
	targetScaleReadyMs = 5000.0
)

// pooledRuns are the rounds of one database, pooled: registrations/s over
// all closed loops, the p99s over every sample of the open loops, the
// highest RSS and start time.
type pooledRuns struct {
	label                         string
	rounds                        int
	registrationsPerS             float64
	emailP99, readP99             float64
	peakRSSMiB, readyMs, problems float64
}

// poolRuns reads dir's bench-scale-<label>-<round>-max.json and -half.json
// files, written with -samples, and pools them.
func poolRuns(dir, label string) (pooledRuns, error) {
	p := pooledRuns{label: label}
	maxFiles, err := filepath.Glob(filepath.Join(dir, "bench-scale-"+label+"-*-max.json"))
	if err != nil || len(maxFiles) == 0 {
		return p, fmt.Errorf("no runs of %s in %s", label, dir)
	}
	var created int
	var seconds float64
	var email, read []time.Duration
	for _, maxFile := range maxFiles {
		var closed, open Report
		for file, into := range map[string]*Report{maxFile: &closed, strings.TrimSuffix(maxFile, "max.json") + "half.json": &open} {
			raw, err := os.ReadFile(file)
			if err != nil {
				return p, err
			}
			if err := json.Unmarshal(raw, into); err != nil {
				return p, fmt.Errorf("%s: %w", file, err)
			}
		}
		p.rounds++
		created += closed.Created
		seconds += closed.Seconds
		email, read = append(email, durations(open.EmailSamplesMs)...), append(read, durations(open.ReadSamplesMs)...)
		p.peakRSSMiB = max(p.peakRSSMiB, closed.PeakRSSMiB, open.PeakRSSMiB)
		p.readyMs = max(p.readyMs, closed.ReadyMs)
		p.problems += float64(closed.MissingEmails + closed.MissingPoints + closed.Duplicates +
			open.MissingEmails + open.MissingPoints + open.Duplicates + open.FailedReads)
	}
	if seconds > 0 {
		p.registrationsPerS = float64(created) / seconds
	}
	p.emailP99, p.readP99 = ms(percentile(email, 99)), ms(percentile(read, 99))
	return p, nil
}

func durations(samplesMs []float64) []time.Duration {
	out := make([]time.Duration, len(samplesMs))
	for i, v := range samplesMs {
		out[i] = time.Duration(v * float64(time.Millisecond))
	}
	return out
}

// summarizeScale prints the runs of scripts/bench-scale.sh, pooled by
// database: the stored users' figures beside the empty database's (the
// first label) and the targets.
func summarizeScale(out io.Writer, dir string, labels []string) error {
	if len(labels) != 2 {
		return errors.New("-scale-summary: give the empty database's label, then the stored users'")
	}
	runs := make([]pooledRuns, len(labels))
	for i, label := range labels {
		var err error
		if runs[i], err = poolRuns(dir, label); err != nil {
			return err
		}
	}
	empty, stored := runs[0], runs[1]
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintf(w, "figure (%d rounds each)\t%s\t%s\ttarget\t\n", stored.rounds, empty.label, stored.label)
	mark := func(ok bool) string {
		if ok {
			return " ok"
		}
		return " MISSED"
	}
	within := fmt.Sprintf("within %.0f %% of %s", targetScaleRatio*100, empty.label)
	// beside prints a figure of both, the stored users' ratio to the
	// empty database's and whether it is within the target.
	beside := func(name string, value func(pooledRuns) float64, higherIsBetter bool) {
		ratio := value(stored) / value(empty)
		ok := ratio <= 1+targetScaleRatio
		if higherIsBetter {
			ok = ratio >= 1-targetScaleRatio
		}
		_, _ = fmt.Fprintf(w, "%s\t%.1f\t%.1f (%.2f×)%s\t%s\t\n", name, value(empty), value(stored), ratio, mark(ok), within)
	}
	// limited prints a figure of both beside the bound each must stay under.
	limited := func(name, target string, value func(pooledRuns) float64, limit float64) {
		_, _ = fmt.Fprintf(w, "%s\t%.1f%s\t%.1f%s\t%s\t\n", name, value(empty), mark(value(empty) < limit),
			value(stored), mark(value(stored) < limit), target)
	}
	beside("registrations/s, closed loop", func(r pooledRuns) float64 { return r.registrationsPerS }, true)
	beside("GET /users/{id} p99 at half rate, ms", func(r pooledRuns) float64 { return r.readP99 }, false)
	beside("201 → email p99 at half rate, ms", func(r pooledRuns) float64 { return r.emailP99 }, false)
	limited("service peak RSS, MB", fmt.Sprintf("< %.0f", targetScaleRSSMB),
		func(r pooledRuns) float64 { return r.peakRSSMiB * (1 << 20) / 1e6 }, targetScaleRSSMB)
	limited("start to ready, ms", fmt.Sprintf("< %.0f", targetScaleReadyMs),
		func(r pooledRuns) float64 { return r.readyMs }, targetScaleReadyMs)
	limited("effects lost or doubled, reads failed", "0", func(r pooledRuns) float64 { return r.problems }, 1)
	return w.Flush()
}
