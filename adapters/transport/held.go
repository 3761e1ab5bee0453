package transport

import (
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
)

// held keeps the messages this process's handlers are working on, by
// handler, with the time each was published. On amqp a consumer holds its
// message unacked, where the queue's ready count no longer shows it; the
// backlog adds these. On googlecloud they are the whole backlog it reads,
// on sqs the oldest age.
type held struct {
	mu        sync.Mutex
	byHandler map[string]map[*message.Message]time.Time
}

func (h *held) hold(handler string, msg *message.Message) (release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byHandler == nil {
		h.byHandler = map[string]map[*message.Message]time.Time{}
	}
	if h.byHandler[handler] == nil {
		h.byHandler[handler] = map[*message.Message]time.Time{}
	}
	h.byHandler[handler][msg] = publishedAt(msg)
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.byHandler[handler], msg)
	}
}

// backlog returns how many messages a handler holds and the age at now of
// the oldest, in seconds (0 when none).
func (h *held) backlog(handler string, now time.Time) (count int, age float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var oldest time.Time
	for _, published := range h.byHandler[handler] {
		if oldest.IsZero() || published.Before(oldest) {
			oldest = published
		}
	}
	if count = len(h.byHandler[handler]); count > 0 {
		age = max(0, now.Sub(oldest).Seconds())
	}
	return count, age
}

// publishedAt is the time in a message's UUIDv7 (the marshaler makes one
// when the message is published to the outbox), or now for a message
// with another kind of UUID.
func publishedAt(msg *message.Message) time.Time {
	id, err := uuid.Parse(msg.UUID)
	if err != nil || id.Version() != 7 {
		return time.Now()
	}
	return time.Unix(id.Time().UnixTime())
}

// HoldMiddleware records each message as held by its handler until the
// handler returns; put it first, so that it spans the whole chain. The
// backlog of a handler on amqp is its queue's ready messages plus these,
// on googlecloud these alone, on sqs their oldest age; on the other
// transports nothing reads them,
// and nothing is recorded.
func (t *Transport) HoldMiddleware(next message.HandlerFunc) message.HandlerFunc {
	if t.kind != KindAMQP && t.kind != KindGoogleCloud && t.kind != KindSQS {
		return next
	}
	return func(msg *message.Message) ([]*message.Message, error) {
		defer t.held.hold(message.HandlerNameFromCtx(msg.Context()), msg)()
		return next(msg)
	}
}
