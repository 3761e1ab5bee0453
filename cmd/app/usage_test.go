package main

import (
	"errors"
	"os"
	"os/exec"
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
		want commandKind
	}{
		{nil, serve},
		{[]string{"help"}, printHelp},
		{[]string{"-h"}, printHelp},
		{[]string{"-help"}, printHelp},
		{[]string{"--help"}, printHelp},
		{[]string{"help", "poison"}, printHelp},
		{[]string{"poison", "list"}, runOperator},
		{[]string{"poison", "requeue", "42"}, runOperator},
		{[]string{"retries", "list"}, runOperator},
	} {
		got, err := parseArgs(tt.args)
		require.NoError(t, err, "%q", tt.args)
		assert.Equal(t, tt.want, got, "%q", tt.args)
	}
	for _, args := range [][]string{
		{"serve"}, {"poison"}, {"poison", "requeue"}, {"poison", "list", "x"}, {"poison", "requeue", "1", "2"},
		{"retries"}, {"retries", "requeue", "1"}, {"-v"}, {"--help=1"},
	} {
		_, err := parseArgs(args)
		assert.ErrorIs(t, err, errUsage, "%q", args)
	}
}

// The help lists every variable the configuration reads, and the default
// it shows is the default: setting a variable to it changes nothing.
func TestUsage_ListsEveryVariableWithItsDefault(t *testing.T) {
	read := map[string]bool{}
	defaults, err := service.LoadConfig(func(name string) string { read[name] = true; return "" })
	require.NoError(t, err)
	text := usage()
	for name := range read {
		assert.Contains(t, text, "\n  "+name+" (default: ", "the help lists %s", name)
	}
	for _, v := range variables {
		assert.True(t, read[v.name], "the configuration reads %s", v.name)
		if v.fallback == "empty" || strings.Contains(v.fallback, " ") {
			continue // a description, not a value
		}
		cfg, err := service.LoadConfig(func(name string) string { return map[string]string{v.name: v.fallback}[name] })
		require.NoError(t, err, v.name)
		assert.Equal(t, defaults, cfg, "%s=%s is the default", v.name, v.fallback)
	}
}

// The README's configuration table names the same variables as the help.
func TestUsage_MatchesTheREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	section := string(readme)
	section = section[strings.Index(section, "\n## Configuration\n"):]
	section = section[:strings.Index(section[1:], "\n## ")+1]
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\|").FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1])
	}
	var listed []string
	for _, v := range variables {
		listed = append(listed, v.name)
	}
	slices.Sort(documented)
	slices.Sort(listed)
	assert.Equal(t, documented, listed)
}

// Help comes first, whatever the environment, on standard output; an
// unknown command prints it on standard error and exits 2.
func TestE2E_Help(t *testing.T) {
	binary := onboardBinary(t)
	run := func(args ...string) (stdout, stderr string, code int) {
		var out, errOut strings.Builder
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "DATABASE_URL=nowhere", "BCRYPT_COST=99") // a bad configuration
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return out.String(), errOut.String(), exit.ExitCode()
		}
		require.NoError(t, err)
		return out.String(), errOut.String(), 0
	}
	for _, arg := range []string{"-h", "--help", "help"} {
		stdout, stderr, code := run(arg)
		assert.Equal(t, 0, code, arg)
		assert.Equal(t, usage(), stdout, arg)
		assert.Empty(t, stderr, arg)
	}
	stdout, stderr, code := run("frobnicate")
	assert.Equal(t, 2, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "onboard: unknown command: \"frobnicate\"\n\n"+usage(), stderr)

	_, stderr, code = run("retries", "list")
	assert.Equal(t, 1, code, "a known command loads the configuration")
	assert.Contains(t, stderr, "BCRYPT_COST")
}
