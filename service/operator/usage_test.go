package operator

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/service"
)

func TestParseArgs(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want Kind
	}{
		{nil, Serve},
		{[]string{"help"}, Help},
		{[]string{"-h"}, Help},
		{[]string{"-help"}, Help},
		{[]string{"--help"}, Help},
		{[]string{"help", "poison"}, Help},
		{[]string{"version"}, Version},
		{[]string{"--version"}, Version},
		{[]string{"poison", "list"}, Command},
		{[]string{"poison", "requeue", "42"}, Command},
		{[]string{"retries", "list"}, Command},
		{[]string{"projections", "status"}, Command},
		{[]string{"projections", "rebuild", "users"}, Command},
		{[]string{"healthcheck"}, Command},
		{[]string{"keys", "rotate"}, Command},
		{[]string{"transport", "teardown"}, Command},
		{[]string{"transport", "teardown", "-force"}, Command},
		{[]string{"transport", "teardown", "--force"}, Command},
	} {
		got, err := ParseArgs(tt.args)
		require.NoError(t, err, "%q", tt.args)
		assert.Equal(t, tt.want, got, "%q", tt.args)
	}
	for _, args := range [][]string{
		{"serve"}, {"poison"}, {"poison", "requeue"}, {"poison", "list", "x"}, {"poison", "requeue", "1", "2"},
		{"retries"}, {"retries", "requeue", "1"}, {"-v"}, {"--help=1"},
		{"version", "x"}, {"projections"}, {"projections", "rebuild"}, {"projections", "rebuild", "points"}, {"projections", "status", "x"},
		{"healthcheck", "now"}, {"keys"}, {"keys", "list"}, {"keys", "rotate", "now"},
		{"transport"}, {"transport", "list"}, {"transport", "teardown", "now"}, {"transport", "teardown", "-force", "x"},
		{"transport", "-force", "teardown"},
	} {
		_, err := ParseArgs(args)
		assert.ErrorIs(t, err, ErrUsage, "%q", args)
	}
}

// The help lists every variable the configuration reads, and the default
// it shows is the default: setting a variable to it changes nothing.
func TestUsage_ListsEveryVariableWithItsDefault(t *testing.T) {
	read := map[string]bool{}
	defaults, err := service.LoadConfig(func(name string) string { read[name] = true; return "" })
	require.NoError(t, err)
	text := Usage()
	for name := range read {
		assert.Contains(t, text, "\n  "+name+" (default: ", "the help lists %s", name)
	}
	for _, v := range service.Variables {
		assert.True(t, read[v.Name], "the configuration reads %s", v.Name)
		if v.Default == "empty" || strings.Contains(v.Default, " ") {
			continue // a description, not a value
		}
		cfg, err := service.LoadConfig(func(name string) string { return map[string]string{v.Name: v.Default}[name] })
		require.NoError(t, err, v.Name)
		assert.Equal(t, defaults, cfg, "%s=%s is the default", v.Name, v.Default)
	}
}

// docs/configuration.md's table names the same variables as the help, and
// the README's table of the main ones names no other.
func TestUsage_MatchesTheConfigurationDocs(t *testing.T) {
	documented := documentedVariables(t, "../../docs/configuration.md")
	var listed []string
	for _, v := range service.Variables {
		listed = append(listed, v.Name)
	}
	slices.Sort(listed)
	assert.Equal(t, listed, documented)
	main := documentedVariables(t, "../../README.md")
	assert.NotEmpty(t, main)
	assert.Subset(t, listed, main)
}

// docs/configuration.md gives each variable the default the table reads.
func TestUsage_TheConfigurationDocsGiveTheDefaults(t *testing.T) {
	text, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	documented := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\|.*\\| ([^|]+) \\|$").FindAllStringSubmatch(string(text), -1) {
		documented[m[1]] = m[2]
	}
	for _, v := range service.Variables {
		if v.Default == "empty" || strings.Contains(v.Default, " ") {
			continue // a description, written as the docs' own words
		}
		assert.Equal(t, "`"+v.Default+"`", documented[v.Name], v.Name)
	}
}

// documentedVariables lists the variables a Markdown file's tables name in
// their first column, sorted.
func documentedVariables(t *testing.T, path string) []string {
	t.Helper()
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	section := string(text)
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\|").FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1])
	}
	slices.Sort(documented)
	return documented
}

// A known command without its subcommand gets that command's lines, not
// the whole help; anything else gets the whole help.
func TestUsageFor_AKnownCommandGetsItsOwnLines(t *testing.T) {
	assert.Equal(t, "usage:\n"+
		"  onboard poison list           list poisoned messages\n"+
		"  onboard poison requeue ID     send one back to the handler that failed on it\n", UsageFor([]string{"poison"}))
	projections := UsageFor([]string{"projections", "rebuild"})
	assert.Contains(t, projections, "onboard projections status")
	assert.Contains(t, projections, "swap it in, while the service runs", "a description's next lines come along")
	assert.NotContains(t, projections, "onboard poison")
	teardown := UsageFor([]string{"transport"})
	assert.True(t, strings.HasPrefix(teardown, "usage:\n  onboard transport teardown [-force]\n"), teardown)
	assert.Contains(t, teardown, "unless -force", "a description's next lines come along")
	assert.Equal(t, Usage(), UsageFor([]string{"nonsense"}))
	assert.Equal(t, Usage(), UsageFor(nil))
}
