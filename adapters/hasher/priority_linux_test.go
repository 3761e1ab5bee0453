package hasher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A hash runs in SCHED_IDLE, unless on the main thread.
func TestBcrypt_HashesAtIdlePriority(t *testing.T) {
	h := newTestHasher(t, Config{})
	offMain := 0
	for range 20 {
		var policy uint32
		var onMain bool
		require.NoError(t, h.timed(func() error {
			onMain = unix.Gettid() == unix.Getpid()
			attr, err := unix.SchedGetAttr(0, 0)
			if err == nil {
				policy = attr.Policy
			}
			return err
		}))
		if !onMain {
			offMain++
			assert.Equal(t, uint32(unix.SCHED_IDLE), policy)
		}
	}
	assert.Positive(t, offMain)
}

// Once the hashes are done, no thread of the process is left in
// SCHED_IDLE: the threads they ran on end with them, and the runtime never
// hands one to another goroutine.
func TestBcrypt_LeavesNoThreadAtIdlePriority(t *testing.T) {
	h := newTestHasher(t, Config{Concurrency: 4})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := h.Hash(context.Background(), "correct horse")
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	// A thread ends just after its goroutine has answered.
	var (
		idle int
		err  error
	)
	assert.Eventually(t, func() bool {
		idle, err = idleThreads()
		return err == nil && idle == 0
	}, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, err)
	assert.Zero(t, idle, "threads still in SCHED_IDLE")
}

// idleThreads counts the threads of this process in SCHED_IDLE, read from
// the policy field of /proc/self/task/*/stat.
func idleThreads() (int, error) {
	stats, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil {
		return 0, err
	}
	idle := 0
	for _, path := range stats {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // the thread ended meanwhile
		}
		// The fields after the command's ")" start at the third, the state;
		// the policy is the 41st.
		fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
		if len(fields) <= 41-3 {
			return 0, fmt.Errorf("%s: %d fields after the command, want the policy (41st)", path, len(fields))
		}
		policy, err := strconv.Atoi(fields[41-3])
		if err != nil {
			return 0, fmt.Errorf("%s: policy: %w", path, err)
		}
		if policy == unix.SCHED_IDLE {
			idle++
		}
	}
	return idle, nil
}
