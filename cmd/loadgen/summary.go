package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// The targets of performance round two, each met by a run of the two
// transports it names.
const (
	targetShareOfBound = 0.92 // registrations/s over the bcrypt bound
	targetCPUMs        = 5.0  // CPU per 201 beside bcrypt
	targetEffectP99SQL = 10.0 // 201 → email or points p99 at half rate
	targetEffectP99MQ  = 8.0
	baselineLabel      = "baseline"
)

// benchRun is the figures of one service on one transport: the closed loop at
// its maximum rate, then the open loop at half of it.
type benchRun struct {
	label     string
	max, half Report
}

// readRuns reads the runs of labels from dir's <prefix><label>-max.json
// and <prefix><label>-half.json.
func readRuns(dir, prefix string, labels []string) ([]benchRun, error) {
	var runs []benchRun
	for _, label := range labels {
		r := benchRun{label: label}
		for suffix, into := range map[string]*Report{"max": &r.max, "half": &r.half} {
			raw, err := os.ReadFile(filepath.Join(dir, prefix+label+"-"+suffix+".json"))
			if err != nil {
				return nil, err
			}
			if err := json.Unmarshal(raw, into); err != nil {
				return nil, fmt.Errorf("%s %s: %w", label, suffix, err)
			}
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// summarize prints one table of the runs whose figures scripts/bench-load.sh
// wrote to dir as bench-<label>-max.json and bench-<label>-half.json, each
// figure beside the baseline's of the same run and beside its target.
func summarize(out io.Writer, dir string, labels []string) error {
	runs, err := readRuns(dir, "bench-", labels)
	if err != nil {
		return err
	}
	var baseline *benchRun
	for i := range runs {
		if runs[i].label == baselineLabel {
			baseline = &runs[i]
		}
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintln(w, "figure\t"+strings.Join(labels, "\t")+"\ttarget\t")
	row := func(name, target string, value func(benchRun) float64, format string, met func(benchRun) string, ratio bool) {
		cells := []string{name}
		for _, r := range runs {
			cell := fmt.Sprintf(format, value(r))
			if ratio && baseline != nil && r.label != baselineLabel && value(*baseline) > 0 {
				cell += fmt.Sprintf(" (%.2f×)", value(r)/value(*baseline))
			}
			cells = append(cells, cell+met(r))
		}
		_, _ = fmt.Fprintln(w, strings.Join(append(cells, target), "\t")+"\t")
	}
	// mark says whether a run of sql or amqp meets its target.
	mark := func(ok func(benchRun) bool) func(benchRun) string {
		return func(r benchRun) string {
			switch {
			case r.label != "sql" && r.label != "amqp":
				return ""
			case ok(r):
				return " ok"
			default:
				return " MISSED"
			}
		}
	}
	effectTarget := func(r benchRun) float64 {
		if r.label == "sql" {
			return targetEffectP99SQL
		}
		return targetEffectP99MQ
	}
	row("share of the bcrypt bound", fmt.Sprintf("≥ %.2f and ≥ baseline", targetShareOfBound),
		func(r benchRun) float64 { return r.max.ShareOfBcryptBound }, "%.2f",
		mark(func(r benchRun) bool {
			return r.max.ShareOfBcryptBound >= targetShareOfBound &&
				(baseline == nil || r.max.ShareOfBcryptBound >= baseline.max.ShareOfBcryptBound)
		}), true)
	row("CPU per 201 beside bcrypt, ms", fmt.Sprintf("≤ %.0f", targetCPUMs),
		func(r benchRun) float64 { return r.max.CPUPerRegistrationMs }, "%.1f",
		mark(func(r benchRun) bool { return r.max.CPUPerRegistrationMs <= targetCPUMs }), true)
	row("201 → email p99 at half rate, ms", fmt.Sprintf("≤ %.0f (sql), ≤ %.0f (amqp)", targetEffectP99SQL, targetEffectP99MQ),
		func(r benchRun) float64 { return r.half.Email.P99 }, "%.1f",
		mark(func(r benchRun) bool { return r.half.Email.P99 <= effectTarget(r) }), true)
	row("201 → points p99 at half rate, ms", fmt.Sprintf("≤ %.0f (sql), ≤ %.0f (amqp)", targetEffectP99SQL, targetEffectP99MQ),
		func(r benchRun) float64 { return r.half.Points.P99 }, "%.1f",
		mark(func(r benchRun) bool { return r.half.Points.P99 <= effectTarget(r) }), true)
	lostOrDoubled := func(r benchRun) float64 {
		return float64(r.max.MissingEmails + r.max.MissingPoints + r.max.Duplicates +
			r.half.MissingEmails + r.half.MissingPoints + r.half.Duplicates)
	}
	row("effects lost or doubled", "0", lostOrDoubled, "%.0f",
		mark(func(r benchRun) bool { return lostOrDoubled(r) == 0 }), false)
	return w.Flush()
}
