package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Scrape is one reading of GET /metrics (Prometheus' text format).
type Scrape struct {
	// Text is the answer as served.
	Text    string
	samples []sample
}

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// MetricsClient is a client of the process's METRICS_ADDR listener, at the
// address its start line names (METRICS_ADDR=127.0.0.1:0 takes a free
// port). On PostgreSQL and MySQL the API's listener serves no /metrics.
func (p *Process) MetricsClient(t testing.TB) *Client {
	t.Helper()
	addr, _ := p.StartLine()["metrics_addr"].(string)
	require.NotEmpty(t, addr, "the start line names metrics_addr: set METRICS_ADDR")
	return NewClient(addr)
}

// Metrics scrapes GET /metrics.
func (c *Client) Metrics() (Scrape, error) {
	r, err := c.Get("/metrics")
	if err != nil {
		return Scrape{}, err
	}
	if r.Status != http.StatusOK {
		return Scrape{}, fmt.Errorf("GET /metrics: %d", r.Status)
	}
	return ParseScrape(string(r.Body))
}

// ParseScrape reads the samples of a scrape; it knows the text format as
// client_golang writes it (no timestamps, no escaped quotes in our labels).
func ParseScrape(text string) (Scrape, error) {
	s := Scrape{Text: text}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var smp sample
		var rest string
		if open := strings.IndexByte(line, '{'); open >= 0 {
			end := strings.LastIndexByte(line, '}')
			if end < open {
				return Scrape{}, fmt.Errorf("bad sample line %q", line)
			}
			smp.name, rest = line[:open], line[end+1:]
			smp.labels = parseLabels(line[open+1 : end])
		} else {
			smp.name, rest, _ = strings.Cut(line, " ")
		}
		value, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return Scrape{}, fmt.Errorf("bad sample value in %q: %w", line, err)
		}
		smp.value = value
		s.samples = append(s.samples, smp)
	}
	return s, nil
}

// parseLabels reads `a="x",b="y"`.
func parseLabels(text string) map[string]string {
	labels := map[string]string{}
	for text != "" {
		key, rest, ok := strings.Cut(text, `="`)
		if !ok {
			break
		}
		value, after, _ := strings.Cut(rest, `"`)
		labels[key] = value
		text = strings.TrimPrefix(after, ",")
	}
	return labels
}

// Sum adds the values of the samples of name whose labels include the
// pairs given (name, value, name, value…); found tells whether any did.
func (s Scrape) Sum(name string, pairs ...string) (sum float64, found bool) {
	for _, smp := range s.samples {
		if smp.name != name || !hasLabels(smp.labels, pairs) {
			continue
		}
		sum += smp.value
		found = true
	}
	return sum, found
}

// Value is Sum, 0 when no sample matches.
func (s Scrape) Value(name string, pairs ...string) float64 {
	v, _ := s.Sum(name, pairs...)
	return v
}

// Count is how many samples of name there are.
func (s Scrape) Count(name string) int {
	n := 0
	for _, smp := range s.samples {
		if smp.name == name {
			n++
		}
	}
	return n
}

func hasLabels(labels map[string]string, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if labels[pairs[i]] != pairs[i+1] {
			return false
		}
	}
	return true
}
