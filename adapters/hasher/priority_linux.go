package hasher

import "golang.org/x/sys/unix"

// lowerThreadPriority puts the calling thread in SCHED_IDLE: it runs only
// when nothing else wants the core, and any other thread that wakes takes
// the core from it at once. A hash is 60 ms of CPU that nobody waits for
// to the millisecond; a handler's commit, a read or a 429 is a few
// hundred microseconds that are. Under the usual policy such a thread
// could wait behind a hash for the scheduler's next turn. Where the
// system refuses (a sandbox forbidding sched_setattr), the hash runs at
// the usual priority. So does a hash on the process's main thread, which
// the runtime keeps asleep, not ended, once its goroutine ends locked: at
// most one hash in a process's life.
func lowerThreadPriority() {
	if unix.Gettid() == unix.Getpid() {
		return
	}
	_ = unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}, 0)
}
