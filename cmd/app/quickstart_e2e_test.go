package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/e2e"
)

// quickstartMarker precedes the README's block that TestE2E_READMEQuickstart
// runs.
const quickstartMarker = "<!-- quickstart: run as it is by TestE2E_READMEQuickstart -->"

// TestE2E_READMEQuickstart runs the README's quickstart block as it is,
// with bash, in a folder of its own where the service runs on its
// defaults (the embedded database in ./data, the development mailbox in
// ./data/mail), only localhost:8080 replaced by the service's address:
// register, read, verify the address from the mailbox's file, sign in,
// change the address, export, erase.
func TestE2E_READMEQuickstart(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, after, found := strings.Cut(string(readme), quickstartMarker+"\n```sh\n")
	require.True(t, found, "the README has the quickstart block after %q", quickstartMarker)
	block, _, found := strings.Cut(after, "\n```\n")
	require.True(t, found)

	dir := t.TempDir()
	proc := e2e.StartIn(t, dir, map[string]string{"PUBSUB": ""}) // the default transport
	addr := proc.WaitServing(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", strings.ReplaceAll(block, "localhost:8080", addr))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the quickstart failed:\n%s", out)

	output := string(out)
	assert.Contains(t, output, `"email_verified":false`, "the registration's answer")
	assert.Contains(t, output, "Etag: \"1\"", "the user read back at once")
	assert.Contains(t, output, `"email_verified":true`, "verified from the mailbox's link")
	assert.Contains(t, output, `"balance":`, "the points")
	assert.Contains(t, output, "Etag: \"3\"", "the address changed after the verification")
	assert.Contains(t, output, `"events": [`, "the export")
	assert.Contains(t, output, "HTTP/1.1 204 No Content", "erased")
	assert.NotContains(t, output, `"error":`, "no step was refused")
	assert.FileExists(t, dir+"/data/onboard.db", "the embedded default's database")
	e2e.AssertNoPanic(t, proc)
}
