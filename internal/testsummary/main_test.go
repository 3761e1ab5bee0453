package main

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goTestJSON runs `go test -json` on the sample package, with args.
func goTestJSON(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append(append([]string{"test", "-json", "-count=1"}, args...), "./testdata/sample")...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(v string) bool { return strings.HasPrefix(v, "TEST_SAMPLE_URL=") })
	out, err := cmd.Output()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the sample fails on purpose")
	return out
}

// The sample package run by `go test`: its output as -v prints it, less the
// progress lines, then the summary.
func TestSummarize_GoTestOutput(t *testing.T) {
	var out bytes.Buffer
	failed := summarize(bytes.NewReader(goTestJSON(t)), &out)
	assert.True(t, failed, "a test failed")
	text := out.String()
	for _, line := range []string{
		"    sample_test.go:10: a note\n",
		"--- PASS: TestPasses (",
		"--- FAIL: TestFails (",
		"\n    --- SKIP: TestParent/needs_a_service (",
		"\n    --- FAIL: TestParent/fails (",
		"\n        sample_test.go:21: broken on purpose\n",
		"\n--- FAIL: TestParent (",
		"--- PASS: TestSkippedSubtests (",
		"FAIL\tgithub.com/onboard/onboard/internal/testsummary/testdata/sample\t",
	} {
		assert.Contains(t, text, line)
	}
	assert.NotContains(t, text, "=== RUN")

	summary := text[strings.Index(text, "\n=== summary\n"):]
	assert.Equal(t, `
=== summary
packages: 0 ok, 1 failed, 0 without tests
    FAIL github.com/onboard/onboard/internal/testsummary/testdata/sample
skipped, by reason:
      3  TEST_SAMPLE_URL is not set: skipping this integration test
to run the tests skipped for want of a service, set: TEST_SAMPLE_URL
failed:
    github.com/onboard/onboard/internal/testsummary/testdata/sample TestFails
    github.com/onboard/onboard/internal/testsummary/testdata/sample TestParent/fails
2 passed, 2 failed, 3 skipped
`, summary, "TestParent and TestSkippedSubtests count through their subtests")
}

func TestSummarize_Short(t *testing.T) {
	var out bytes.Buffer
	summarize(bytes.NewReader(goTestJSON(t, "-short")), &out)
	text := out.String()
	assert.Contains(t, text, "\n      2  end-to-end test: skipped under -short\n"+
		"      1  TEST_SAMPLE_URL is not set: skipping this integration test\n"+
		"to run the tests skipped for want of a service, set: TEST_SAMPLE_URL\n"+
		"to run the tests skipped under -short: make test\n")
	assert.True(t, strings.HasSuffix(text, "\n2 passed, 2 failed, 3 skipped\n"), "the last line: %q", text[strings.LastIndex(text[:len(text)-1], "\n"):])
}

func TestSummarize_AllPass(t *testing.T) {
	in := `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.01s\n"}
{"Action":"pass","Package":"p"}
{"Action":"output","Package":"q","Output":"?   \tq\t[no test files]\n"}
{"Action":"skip","Package":"q"}
`
	var out bytes.Buffer
	assert.False(t, summarize(strings.NewReader(in), &out))
	assert.Equal(t, "--- PASS: TestA (0.00s)\nok  \tp\t0.01s\n?   \tq\t[no test files]\n"+
		"\n=== summary\npackages: 1 ok, 0 failed, 1 without tests\n1 passed, 0 failed, 0 skipped\n", out.String())
}

// A build failure, a line that is no event, and a binary that died while
// a test ran: each fails the run.
func TestSummarize_Failures(t *testing.T) {
	in := `{"ImportPath":"b [b.test]","Action":"build-output","Output":"b/b_test.go:3:1: syntax error\n"}
{"ImportPath":"b [b.test]","Action":"build-fail"}
{"Action":"start","Package":"b"}
{"Action":"output","Package":"b","Output":"FAIL\tb [build failed]\n"}
{"Action":"fail","Package":"b","FailedBuild":"b [b.test]"}
go: some error of the go command
{"Action":"start","Package":"c"}
{"Action":"run","Package":"c","Test":"TestHangs"}
{"Action":"run","Package":"c","Test":"TestHangs/sub"}
{"Action":"output","Package":"c","Output":"panic: test timed out after 1s\n"}
{"Action":"fail","Package":"c"}
`
	var out bytes.Buffer
	assert.True(t, summarize(strings.NewReader(in), &out))
	text := out.String()
	assert.Contains(t, text, "b/b_test.go:3:1: syntax error\n")
	assert.Contains(t, text, "go: some error of the go command\n")
	assert.Contains(t, text, "packages: 0 ok, 2 failed, 0 without tests\n    FAIL b\n    FAIL c\n")
	assert.Contains(t, text, "failed:\n    c TestHangs/sub (did not finish)\n0 passed, 1 failed, 0 skipped\n")
}
