package e2e

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseScrape(t *testing.T) {
	s, err := ParseScrape(`# HELP onboard_x_total X.
# TYPE onboard_x_total counter
onboard_x_total{handler="A",class="outage"} 2
onboard_x_total{handler="B",class="outage"} 3
onboard_up 1
onboard_h_seconds_bucket{route="/users/:id",le="+Inf"} 4
`)
	require.NoError(t, err)
	assert.Equal(t, 5.0, s.Value("onboard_x_total", "class", "outage"))
	assert.Equal(t, 3.0, s.Value("onboard_x_total", "handler", "B"))
	assert.Equal(t, 1.0, s.Value("onboard_up"))
	assert.Equal(t, 4.0, s.Value("onboard_h_seconds_bucket", "route", "/users/:id", "le", "+Inf"))
	_, found := s.Sum("onboard_x_total", "handler", "C")
	assert.False(t, found)
	assert.Equal(t, 2, s.Count("onboard_x_total"))

	_, err = ParseScrape("onboard_up one\n")
	assert.Error(t, err)
}
