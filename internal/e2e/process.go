package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Output collects one output stream of the service, line by line.
type Output struct {
	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
	lines   []string
	onLine  func(line string)
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.all.Write(p)
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		line := string(o.partial[:i])
		o.partial = o.partial[i+1:]
		o.lines = append(o.lines, line)
		if o.onLine != nil {
			o.onLine(line)
		}
	}
	return len(p), nil
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.all.String()
}

// Lines returns the complete lines so far and an unterminated last one.
func (o *Output) Lines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	lines := append([]string(nil), o.lines...)
	if len(o.partial) > 0 {
		lines = append(lines, string(o.partial))
	}
	return lines
}

// JSONLines decodes every line that is a JSON object.
func (o *Output) JSONLines() []map[string]any {
	var out []map[string]any
	for _, line := range o.Lines() {
		var record map[string]any
		if json.Unmarshal([]byte(line), &record) == nil {
			out = append(out, record)
		}
	}
	return out
}

// Process is one run of the binary.
type Process struct {
	Stdout, Stderr *Output

	cmd     *exec.Cmd
	serving chan string
	exited  chan struct{}
	waitErr error
}

// Start runs the binary with the harness's environment and vars over it
// (Environ), and args; it is killed when the test ends if still running,
// and on failure the test logs its output.
func Start(t testing.TB, vars map[string]string, args ...string) *Process {
	t.Helper()
	return StartIn(t, "", vars, args...)
}

// StartIn is Start in the folder dir ("": the test's own), where a
// relative DATABASE_URL, as the default's, lives.
func StartIn(t testing.TB, dir string, vars map[string]string, args ...string) *Process {
	t.Helper()
	return StartBinaryIn(t, Binary(t), dir, vars, args...)
}

// StartBinaryIn is StartIn with a binary of BinaryWith's.
func StartBinaryIn(t testing.TB, binary, dir string, vars map[string]string, args ...string) *Process {
	t.Helper()
	p := &Process{
		Stdout:  &Output{},
		Stderr:  &Output{},
		serving: make(chan string, 1),
		exited:  make(chan struct{}),
	}
	p.Stdout.onLine = func(line string) {
		var record struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &record) == nil && record.Msg == "onboard is serving" {
			select {
			case p.serving <- record.Addr:
			default:
			}
		}
	}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Dir = dir
	p.cmd.Env = Environ(vars)
	p.cmd.Stdout = p.Stdout
	p.cmd.Stderr = p.Stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			// Every line but the HTTP access log, which would drown the rest.
			var lines []string
			for _, line := range p.Stdout.Lines() {
				if !strings.Contains(line, `"msg":"http request"`) {
					lines = append(lines, line)
				}
			}
			t.Logf("service stdout, without the HTTP requests:\n%s", Tail(strings.Join(lines, "\n"), 300))
			t.Logf("service stderr:\n%s", Tail(p.Stderr.String(), 50))
		}
	})
	return p
}

// Tail returns the last lines of text, saying how many it left out.
func Tail(text string, lines int) string {
	all := strings.Split(text, "\n")
	if len(all) > lines {
		all = append([]string{fmt.Sprintf("[... %d lines]", len(all)-lines)}, all[len(all)-lines:]...)
	}
	return strings.Join(all, "\n")
}

// GoroutinesIn returns the goroutines of a Go stack dump (SIGQUIT's, a
// panic's) with a frame in a package of one of the prefixes.
func GoroutinesIn(dump string, prefixes ...string) string {
	var kept []string
	for _, g := range strings.Split(dump, "\n\ngoroutine ") {
		for _, prefix := range prefixes {
			if strings.Contains(g, prefix) {
				kept = append(kept, "goroutine "+strings.TrimPrefix(g, "goroutine "))
				break
			}
		}
	}
	return strings.Join(kept, "\n\n")
}

// WaitServing returns the HTTP address the service logged once ready.
func (p *Process) WaitServing(t testing.TB) string {
	t.Helper()
	select {
	case addr := <-p.serving:
		require.NotEmpty(t, addr)
		return addr
	case <-p.exited:
		t.Fatalf("the service exited before serving: %v\nstderr: %s", p.waitErr, p.Stderr.String())
	case <-time.After(StartTimeout):
		t.Fatalf("the service did not log %q within %s", "onboard is serving", StartTimeout)
	}
	return ""
}

// WaitFailed waits for a start that must fail: the service exits before
// serving, within FailTimeout.
func (p *Process) WaitFailed(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
	case addr := <-p.serving:
		t.Fatalf("the service started on %s", addr)
	case <-time.After(FailTimeout):
		t.Fatalf("the service did not exit within %s", FailTimeout)
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig), "signal %s", sig)
}

// Stop sends SIGTERM and asserts a clean exit.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	p.Signal(t, syscall.SIGTERM)
	start := time.Now()
	p.WaitExit(t)
	t.Logf("stopped in %s", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, 0, p.ExitCode())
}

// WaitExit waits for a process that was sent SIGTERM and asserts a clean exit.
func (p *Process) WaitExit(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(StopTimeout):
		// SIGQUIT makes Go print every goroutine's stack to stderr, which
		// the test's log shows: where the shutdown waits.
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
		}
		t.Fatalf("the service did not exit within %s of SIGTERM; its goroutines in onboard's, Watermill's or Pub/Sub's code, after SIGQUIT:\n%s",
			StopTimeout, GoroutinesIn(p.Stderr.String(), "github.com/onboard/onboard/", "github.com/ThreeDotsLabs/", "cloud.google.com/go/pubsub"))
	}
	assert.NoError(t, p.waitErr, "exit status after SIGTERM")
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Kill(), "SIGKILL")
	select {
	case <-p.exited:
	case <-time.After(StopTimeout):
		t.Fatalf("the service did not die within %s of SIGKILL", StopTimeout)
	}
}

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is the error of the process's exit, nil for status 0; read it once
// Exited is closed.
func (p *Process) Err() error {
	<-p.exited
	return p.waitErr
}

// ExitCode is the exit status, -1 when killed by a signal.
func (p *Process) ExitCode() int {
	<-p.exited
	return p.cmd.ProcessState.ExitCode()
}

// StartLine is the "onboard is serving" record, nil before it is logged.
func (p *Process) StartLine() map[string]any {
	for _, record := range p.Stdout.JSONLines() {
		if record["msg"] == "onboard is serving" {
			return record
		}
	}
	return nil
}

// Handled counts the "message handled" lines per handler.
func (p *Process) Handled() map[string]int {
	out := map[string]int{}
	for _, record := range p.Stdout.JSONLines() {
		if record["msg"] != "message handled" {
			continue
		}
		if handler, _ := record["handler"].(string); handler != "" {
			out[handler]++
		}
	}
	return out
}

// AssertNoPanic checks the processes' output for a panic or a data race.
func AssertNoPanic(t testing.TB, procs ...*Process) {
	t.Helper()
	for _, p := range procs {
		all := p.Stdout.String() + p.Stderr.String()
		assert.NotContains(t, all, "panic")
		assert.NotContains(t, all, "goroutine ")
		assert.NotContains(t, all, "DATA RACE")
	}
}
