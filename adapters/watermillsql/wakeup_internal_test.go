package watermillsql

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newIdleWakeup is a Wakeup that listens to nothing: the test notifies.
func newIdleWakeup(t *testing.T) *Wakeup {
	w := &Wakeup{seq: map[string]uint64{}, waiting: map[string]map[string][]waiter{}, done: make(chan struct{})}
	t.Cleanup(func() { close(w.done) })
	return w
}

// isClosed reports whether ch is closed (a waiter woken) now.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (w *Wakeup) waitingOf(topic, group string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.waiting[topic][group])
}

// idle starts n subscribers of the group, each after an empty poll, and
// counts those woken.
func idle(w *Wakeup, topic, group string, n int, woken *atomic.Int32) []*wakeupBackoff {
	var backoffs []*wakeupBackoff
	for range n {
		b := w.backoff(topic, group, time.Second, nil).(*wakeupBackoff)
		backoffs = append(backoffs, b)
		go func() {
			b.HandleError(watermill.NopLogger{}, true, nil)
			woken.Add(1)
		}()
	}
	return backoffs
}

// A notification wakes one waiting subscriber of each group, not all.
func TestWakeup_ANotificationWakesOneSubscriberPerGroup(t *testing.T) {
	w := newIdleWakeup(t)
	var welcome, points atomic.Int32
	idle(w, "events.UserRegistered", "welcome", 4, &welcome)
	idle(w, "events.UserRegistered", "points", 4, &points)
	require.Eventually(t, func() bool {
		return w.waitingOf("events.UserRegistered", "welcome") == 4 && w.waitingOf("events.UserRegistered", "points") == 4
	}, 5*time.Second, time.Millisecond, "every subscriber waits")

	w.wake("events.UserRegistered")
	assert.Equal(t, 3, w.waitingOf("events.UserRegistered", "welcome"), "one of the group is woken")
	assert.Equal(t, 3, w.waitingOf("events.UserRegistered", "points"), "one of the group is woken")
	require.Eventually(t, func() bool { return welcome.Load() == 1 && points.Load() == 1 }, 5*time.Second, time.Millisecond)

	w.wake("events.EmailChanged")
	assert.Equal(t, 3, w.waitingOf("events.UserRegistered", "welcome"), "another topic's notification wakes none")
}

// A subscriber that finds a message twice in a row is in a backlog, and
// wakes one more of its group; one message alone wakes nobody.
func TestWakeup_ABacklogWakesOneMoreReader(t *testing.T) {
	w := newIdleWakeup(t)
	var woken atomic.Int32
	idle(w, "topic", "group", 2, &woken)
	require.Eventually(t, func() bool { return w.waitingOf("topic", "group") == 2 }, 5*time.Second, time.Millisecond)

	reader := w.backoff("topic", "group", time.Second, nil).(*wakeupBackoff)
	assert.Zero(t, reader.HandleError(watermill.NopLogger{}, false, nil), "a message found: poll again at once")
	assert.Equal(t, 2, w.waitingOf("topic", "group"), "one message wakes nobody")
	reader.HandleError(watermill.NopLogger{}, false, nil)
	assert.Equal(t, 1, w.waitingOf("topic", "group"), "the second in a row wakes one more reader")
	require.Eventually(t, func() bool { return woken.Load() == 1 }, 5*time.Second, time.Millisecond)
}

// A notification that came while the subscriber polled makes it poll again
// at once instead of waiting: nothing committed is left unread.
func TestWakeup_ANotificationDuringThePollIsNotMissed(t *testing.T) {
	w := newIdleWakeup(t)
	b := w.backoff("topic", "group", time.Second, nil).(*wakeupBackoff)
	b.seen = w.notifications("topic")
	w.wake("topic") // commits while the poll ran, with nobody waiting
	woken, leave := w.wait("topic", "group", b.seen)
	defer leave()
	assert.True(t, isClosed(woken), "a subscriber that missed a notification waits")
	assert.Zero(t, w.waitingOf("topic", "group"), "and is not queued")
}

// A subscriber that stops waiting unwoken leaves the queue, so a
// notification wakes one that is still there.
func TestWakeup_LeavingTheQueue(t *testing.T) {
	w := newIdleWakeup(t)
	first, leaveFirst := w.wait("topic", "group", 0)
	second, leaveSecond := w.wait("topic", "group", 0)
	defer leaveSecond()
	leaveFirst()
	w.wake("topic")
	assert.True(t, isClosed(second), "the subscriber still waiting is woken")
	assert.False(t, isClosed(first), "the one that left is not")
}

// A poll that found messages but drained the queue (it read less than a
// batch) waits to be woken as an empty one does, instead of reading the
// queue again for nothing; one that read a whole batch reads again at once.
func TestWakeup_ADrainedQueueIsNotReadAgain(t *testing.T) {
	w := newIdleWakeup(t)
	drained := true
	b := w.backoff("topic", "group", time.Second, func() bool { return drained }).(*wakeupBackoff)
	b.seen = w.notifications("topic")
	returned := make(chan struct{})
	go func() {
		b.HandleError(watermill.NopLogger{}, false, nil)
		close(returned)
	}()
	require.Eventually(t, func() bool { return w.waitingOf("topic", "group") == 1 }, 5*time.Second, time.Millisecond,
		"it waits")
	w.wake("topic")
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("a notification wakes it")
	}

	drained = false
	assert.Zero(t, b.HandleError(watermill.NopLogger{}, false, nil), "a whole batch: read again at once")
	assert.Zero(t, w.waitingOf("topic", "group"))
}

func TestCountingQueueSchema_Drained(t *testing.T) {
	s := countingQueueSchema{QueueSchema: QueueSchema{BatchSize: 2}, rows: new(atomic.Int64)}
	_, err := s.SelectQuery(wsql.SelectQueryParams{Topic: "t", ConsumerGroup: "g"})
	require.NoError(t, err)
	assert.True(t, s.drained(), "no row")
	s.rows.Add(1)
	assert.True(t, s.drained(), "less than a batch")
	s.rows.Add(1)
	assert.False(t, s.drained(), "a whole batch")
	_, err = s.SelectQuery(wsql.SelectQueryParams{Topic: "t", ConsumerGroup: "g"})
	require.NoError(t, err)
	assert.True(t, s.drained(), "each select counts anew")
}

// Listening again after a lost connection wakes every waiting subscriber,
// and has one that was busy meanwhile read again before it waits: what
// committed while nobody listened notified nobody.
func TestWakeup_WakeAllAfterALostConnection(t *testing.T) {
	w := newIdleWakeup(t)
	busy := w.backoff("topic", "group", time.Second, nil).(*wakeupBackoff)
	busy.seen = w.notifications("topic")
	first, leaveFirst := w.wait("topic", "group", busy.seen)
	defer leaveFirst()
	second, leaveSecond := w.wait("other", "group", 0)
	defer leaveSecond()

	w.wakeAll()
	for _, woken := range []<-chan struct{}{first, second} {
		assert.True(t, isClosed(woken), "a waiting subscriber is woken")
	}
	again, leave := w.wait("topic", "group", busy.seen)
	defer leave()
	assert.True(t, isClosed(again), "one busy meanwhile reads again before it waits")
}
