package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// The targets at a million stored users, beside an empty database in the
// same run (scripts/bench-scale.sh).
const (
	targetScaleRatio   = 0.10 // registrations/s, GET /users/{id} p99, 201 → email p99
	targetScaleRSSMiB  = 50.0
	targetScaleReadyMs = 5000.0
)

// summarizeScale prints the runs of scripts/bench-scale.sh, read from dir's
// bench-scale-<label>-{max,half}.json: each figure of the stored users'
// runs beside the empty database's (the first label) and its target.
func summarizeScale(out io.Writer, dir string, labels []string) error {
	if len(labels) < 2 {
		return errors.New("-scale-summary: give the empty database's label, then the stored users'")
	}
	runs, err := readRuns(dir, "bench-scale-", labels)
	if err != nil {
		return err
	}
	empty := runs[0]
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintln(w, "figure\t"+strings.Join(labels, "\t")+"\ttarget\t")
	mark := func(ok bool) string {
		if ok {
			return " ok"
		}
		return " MISSED"
	}
	// row prints a figure; within is the bound on its ratio to the empty
	// database's (higher is worse when above), or, when zero, limit bounds
	// the figure itself.
	row := func(name, target string, value func(benchRun) float64, format string, within, limit float64, higherIsBetter bool) {
		cells := []string{name}
		for i, r := range runs {
			v := value(r)
			cell := fmt.Sprintf(format, v)
			switch {
			case within > 0 && i > 0 && value(empty) > 0:
				ratio := v / value(empty)
				ok := ratio <= 1+within
				if higherIsBetter {
					ok = ratio >= 1-within
				}
				cell += fmt.Sprintf(" (%.2f×)", ratio) + mark(ok)
			case limit > 0:
				cell += mark(v < limit)
			}
			cells = append(cells, cell)
		}
		_, _ = fmt.Fprintln(w, strings.Join(append(cells, target), "\t")+"\t")
	}
	within := fmt.Sprintf("within %.0f %% of %s", targetScaleRatio*100, empty.label)
	row("registrations/s, closed loop", within, func(r benchRun) float64 { return r.max.RegistrationsPerS },
		"%.1f", targetScaleRatio, 0, true)
	row("GET /users/{id} p99 at half rate, ms", within, func(r benchRun) float64 { return r.half.Read.P99 },
		"%.1f", targetScaleRatio, 0, false)
	row("201 → email p99 at half rate, ms", within, func(r benchRun) float64 { return r.half.Email.P99 },
		"%.1f", targetScaleRatio, 0, false)
	row("service peak RSS, MiB", fmt.Sprintf("< %.0f", targetScaleRSSMiB), func(r benchRun) float64 {
		return max(r.max.PeakRSSMiB, r.half.PeakRSSMiB)
	}, "%.1f", 0, targetScaleRSSMiB, false)
	row("start to ready, ms", fmt.Sprintf("< %.0f", targetScaleReadyMs), func(r benchRun) float64 { return r.max.ReadyMs },
		"%.0f", 0, targetScaleReadyMs, false)
	lostOrDoubled := func(r benchRun) float64 {
		return float64(r.max.MissingEmails + r.max.MissingPoints + r.max.Duplicates +
			r.half.MissingEmails + r.half.MissingPoints + r.half.Duplicates + r.half.FailedReads)
	}
	row("effects lost or doubled, reads failed", "0", lostOrDoubled, "%.0f", 0, 1, false)
	return w.Flush()
}
