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
// backlog adds these.
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

// read returns how many messages a handler holds and when the oldest was
// published (zero when none).
func (h *held) read(handler string) (count int, oldest time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, published := range h.byHandler[handler] {
		if oldest.IsZero() || published.Before(oldest) {
			oldest = published
		}
	}
	return len(h.byHandler[handler]), oldest
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
// backlog of a handler on amqp is its queue's ready messages plus these;
// on the other transports nothing reads them, and nothing is recorded.
func (t *Transport) HoldMiddleware(next message.HandlerFunc) message.HandlerFunc {
	if t.kind != TransportAMQP {
		return next
	}
	return func(msg *message.Message) ([]*message.Message, error) {
		defer t.held.hold(message.HandlerNameFromCtx(msg.Context()), msg)()
		return next(msg)
	}
}
