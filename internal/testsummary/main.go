// Command testsummary reads `go test -json` on its standard input and
// prints the tests' output as `go test -v` does, without the === RUN, PAUSE,
// CONT and NAME lines, then a summary: the packages that passed and failed;
// the tests passed, failed and skipped; the skips grouped by reason; and
// what would run the skipped ones. Its last line reads
// "N passed, N failed, N skipped". It exits 1 when a package or a test
// failed, so `go test -json ./... | testsummary` fails as `go test` does.
//
// A test with subtests is counted through them: a parent whose subtests
// were skipped is not a pass. A parent counts only when it failed on its
// own (no subtest of it failed).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

func main() {
	if failed := summarize(os.Stdin, os.Stdout); failed {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// test is what is known of one test or subtest.
type test struct {
	pkg, name string
	result    string   // pass, fail, skip; empty while it runs
	messages  []string // the first line of each message it logged
}

// run collects the events of one `go test` run.
type run struct {
	tests    map[[2]string]*test // by package and name
	order    []*test
	packages map[string]string // package: pass, fail or skip (no test files)
}

func summarize(in io.Reader, out io.Writer) (failed bool) {
	w := bufio.NewWriter(out)
	defer func() { _ = w.Flush() }()
	r := &run{tests: map[[2]string]*test{}, packages: map[string]string{}}
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for scanner.Scan() {
		line := scanner.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil || e.Action == "" {
			// Not an event: an error of `go` itself, say. Printed as it came.
			_, _ = fmt.Fprintf(w, "%s\n", line)
			_ = w.Flush()
			continue
		}
		r.add(e, w)
	}
	if err := scanner.Err(); err != nil {
		_, _ = fmt.Fprintf(w, "testsummary: reading the test events: %v\n", err)
		failed = true
	}
	return r.report(w) || failed
}

// progress matches the lines of `go test -v` that only say a test runs.
var progress = regexp.MustCompile(`^\s*=== (RUN|PAUSE|CONT|NAME)\b`)

func (r *run) add(e event, w *bufio.Writer) {
	switch e.Action {
	case "output", "build-output":
		if !progress.MatchString(e.Output) {
			// A subtest's lines come unindented: indent them as -v does, by
			// its depth, so a parent's --- PASS line stands out.
			_, _ = io.WriteString(w, strings.Repeat("    ", strings.Count(e.Test, "/"))+e.Output)
			_ = w.Flush()
		}
		if e.Test != "" {
			r.test(e.Package, e.Test).log(e.Output)
		}
	case "run":
		r.test(e.Package, e.Test)
	case "pass", "fail", "skip":
		if e.Test != "" {
			r.test(e.Package, e.Test).result = e.Action
		} else {
			r.packages[e.Package] = e.Action // a failed build too
		}
	}
}

func (r *run) test(pkg, name string) *test {
	key := [2]string{pkg, name}
	t := r.tests[key]
	if t == nil {
		t = &test{pkg: pkg, name: name}
		r.tests[key] = t
		r.order = append(r.order, t)
	}
	return t
}

// logPrefix starts a line that t.Log, t.Skip or t.Error printed:
// "    file_test.go:42: message".
var logPrefix = regexp.MustCompile(`^\s+[\w.-]+\.go:\d+: `)

func (t *test) log(output string) {
	if loc := logPrefix.FindStringIndex(output); loc != nil {
		t.messages = append(t.messages, strings.TrimSpace(output[loc[1]:]))
	}
}

// reason is why a test was skipped: its last message.
func (t *test) reason() string {
	if len(t.messages) == 0 {
		return "(no reason given)"
	}
	reason := t.messages[len(t.messages)-1]
	if len(reason) > 200 {
		reason = reason[:200] + "…"
	}
	return reason
}

// Hints in skip reasons: "TEST_X_URL is not set: skipping this integration
// test", and "... skipped under -short".
var (
	unsetVariable = regexp.MustCompile(`\b([A-Z][A-Z0-9_]*) is not set\b`)
	shortMode     = regexp.MustCompile(`skipped under -short\b`)
)

type tally struct {
	passed, skipped int
	failed          []string
	reasons         map[string]int
}

func (r *run) count() tally {
	parents := map[[2]string]bool{}
	for _, t := range r.order {
		for i := range len(t.name) {
			if t.name[i] == '/' {
				parents[[2]string{t.pkg, t.name[:i]}] = true
			}
		}
	}
	failedBelow := map[[2]string]bool{}
	for _, t := range r.order {
		if t.result != "fail" && t.result != "" {
			continue
		}
		for i := range len(t.name) {
			if t.name[i] == '/' {
				failedBelow[[2]string{t.pkg, t.name[:i]}] = true
			}
		}
	}
	c := tally{reasons: map[string]int{}}
	for _, t := range r.order {
		key := [2]string{t.pkg, t.name}
		if parents[key] {
			// Counted through its subtests, unless it failed on its own.
			switch {
			case failedBelow[key]:
			case t.result == "fail":
				c.failed = append(c.failed, t.pkg+" "+t.name)
			case t.result == "":
				c.failed = append(c.failed, t.pkg+" "+t.name+" (did not finish)")
			}
			continue
		}
		switch t.result {
		case "pass":
			c.passed++
		case "skip":
			c.skipped++
			c.reasons[t.reason()]++
		case "fail":
			c.failed = append(c.failed, t.pkg+" "+t.name)
		default: // its binary crashed or timed out while it ran
			c.failed = append(c.failed, t.pkg+" "+t.name+" (did not finish)")
		}
	}
	return c
}

// report prints the summary and says whether anything failed.
func (r *run) report(w io.Writer) bool {
	c := r.count()
	var ok, failed, empty []string
	for pkg, result := range r.packages {
		switch result {
		case "pass":
			ok = append(ok, pkg)
		case "fail":
			failed = append(failed, pkg)
		default:
			empty = append(empty, pkg)
		}
	}
	slices.Sort(failed)
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }
	p("\n=== summary\n")
	p("packages: %d ok, %d failed, %d without tests\n", len(ok), len(failed), len(empty))
	for _, pkg := range failed {
		p("    FAIL %s\n", pkg)
	}
	if len(c.reasons) > 0 {
		p("skipped, by reason:\n")
		reasons := make([]string, 0, len(c.reasons))
		for reason := range c.reasons {
			reasons = append(reasons, reason)
		}
		slices.SortFunc(reasons, func(a, b string) int {
			if c.reasons[a] != c.reasons[b] {
				return c.reasons[b] - c.reasons[a]
			}
			return strings.Compare(a, b)
		})
		for _, reason := range reasons {
			p("%7d  %s\n", c.reasons[reason], reason)
		}
		printHints(w, reasons)
	}
	if len(c.failed) > 0 {
		p("failed:\n")
		for _, name := range c.failed {
			p("    %s\n", name)
		}
	}
	p("%d passed, %d failed, %d skipped\n", c.passed, len(c.failed), c.skipped)
	return len(failed) > 0 || len(c.failed) > 0
}

// printHints names what would run the skipped tests: the variables their
// reasons say are not set, and a run without -short.
func printHints(w io.Writer, reasons []string) {
	var variables []string
	short := false
	for _, reason := range reasons {
		for _, m := range unsetVariable.FindAllStringSubmatch(reason, -1) {
			if !slices.Contains(variables, m[1]) {
				variables = append(variables, m[1])
			}
		}
		short = short || shortMode.MatchString(reason)
	}
	slices.Sort(variables)
	if len(variables) > 0 {
		_, _ = fmt.Fprintf(w, "to run the tests skipped for want of a service, set: %s\n", strings.Join(variables, " "))
	}
	if short {
		_, _ = fmt.Fprintln(w, "to run the tests skipped under -short: make test")
	}
}
