//go:build !nonats

package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsPoisonQueue is the namespace's poison stream: each poisoned copy is
// one of its messages, listed and deleted by its sequence.
type natsPoisonQueue struct {
	url   string
	names natsNames
}

func newNATSPoisonQueue(cfg Config) (PoisonQueue, error) {
	if err := checkNATSURL(cfg.NATSURL); err != nil {
		return nil, err
	}
	return natsPoisonQueue{url: cfg.NATSURL, names: natsNames{cfg.Namespace}}, nil
}

// open connects for one command; close ends the connection.
func (q natsPoisonQueue) open() (js jetstream.JetStream, close func(), err error) {
	conn, err := nats.Connect(q.url, nats.Timeout(natsTimeout))
	if err != nil {
		return nil, nil, fmt.Errorf("NATS (NATS_URL): %w", err)
	}
	if js, err = jetstream.New(conn); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return js, conn.Close, nil
}

// each visits the poisoned messages in the order they were poisoned, until
// visit stops; nothing was ever poisoned where the stream is missing.
func (q natsPoisonQueue) each(ctx context.Context, js jetstream.JetStream,
	visit func(stream jetstream.Stream, seq uint64, msg *message.Message) (stop bool, err error)) error {
	stream, err := js.Stream(ctx, q.names.poisonStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the poison queue: %w", err)
	}
	for seq := uint64(1); ctx.Err() == nil; {
		// The first message from seq on: deleted ones are skipped.
		raw, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(q.names.poisonSubject()))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the poison queue: %w", err)
		}
		if stop, err := visit(stream, raw.Sequence, natsMessage(raw.Header, raw.Data)); err != nil || stop {
			return err
		}
		seq = raw.Sequence + 1
	}
	return ctx.Err()
}

func (q natsPoisonQueue) List(ctx context.Context) ([]PoisonedMessage, error) {
	js, closeConn, err := q.open()
	if err != nil {
		return nil, err
	}
	defer closeConn()
	var out []PoisonedMessage
	err = q.each(ctx, js, func(_ jetstream.Stream, _ uint64, msg *message.Message) (bool, error) {
		out = append(out, describePoisoned(msg))
		return false, nil
	})
	return out, err
}

// Requeue publishes the message to its topic for the handler that poisoned
// it, waits for the stream's ack, and only then deletes it from the poison
// stream. Run again after a failure, it is stored once (its Nats-Msg-Id).
func (q natsPoisonQueue) Requeue(ctx context.Context, id string) (PoisonedMessage, error) {
	js, closeConn, err := q.open()
	if err != nil {
		return PoisonedMessage{}, err
	}
	defer closeConn()
	var found *PoisonedMessage
	err = q.each(ctx, js, func(stream jetstream.Stream, seq uint64, msg *message.Message) (bool, error) {
		if msg.UUID != id {
			return false, nil
		}
		poisoned := describePoisoned(msg)
		if err := checkRequeueTarget(poisoned); err != nil {
			return true, err
		}
		topic := NamespacedTopic(q.names.namespace, poisoned.Topic)
		// Nothing would read it for a handler without a consumer.
		consumer := q.names.consumer(poisoned.Handler, topic)
		if _, err := js.Consumer(ctx, q.names.stream(topic), consumer); err != nil {
			return true, fmt.Errorf("requeue to %s: %w", consumer, err)
		}
		out, err := natsMarshaler{names: q.names}.Marshal(topic, unpoisoned(msg, poisoned.Handler))
		if err != nil {
			return true, err
		}
		out.Header.Set(nats.MsgIdHdr, "requeue:"+id)
		if _, err := js.PublishMsg(ctx, out); err != nil {
			return true, fmt.Errorf("requeue to %s: %w", topic, err)
		}
		if err := stream.DeleteMsg(ctx, seq); err != nil {
			return true, fmt.Errorf("delete from the poison queue: %w", err)
		}
		found = &poisoned
		return true, nil
	})
	if err != nil {
		return PoisonedMessage{}, err
	}
	if found == nil {
		return PoisonedMessage{}, ErrPoisonedMessageNotFound
	}
	return *found, nil
}

// readNATSHandlers reads each handler's durable consumer: its messages not
// delivered yet plus those delivered and not acked, on every replica, and
// when the stream stored the oldest of them.
func (c *BacklogReader) readNATSHandlers(ctx context.Context, r *reading) error {
	now := time.Now()
	for _, h := range c.cfg.Handlers {
		count, oldest, err := c.cfg.Transport.nats.backlog(ctx, h.Handler, c.cfg.Transport.Topic(h.Topic))
		if err != nil {
			return err
		}
		age := 0.0
		if count > 0 {
			age = max(0, now.Sub(oldest).Seconds())
		}
		r.gauge(HandlerMessages, float64(count), h.Handler)
		r.gauge(HandlerOldestAge, age, h.Handler)
	}
	return nil
}

// backlog is what waits for a group on a namespaced topic: the messages of
// its consumer not acked, and when the oldest was stored: the first on
// the topic's subject past the consumer's ack floor (past what it was
// delivered, when it holds none). A consumer not made yet has nothing.
func (t *natsTransport) backlog(ctx context.Context, group, topic string) (count int, oldest time.Time, err error) {
	name := t.names.consumer(group, topic)
	consumer, err := t.js.Consumer(ctx, t.names.stream(topic), name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("consumer %s: %w", name, err)
	}
	info := consumer.CachedInfo() // as read just now
	count = int(info.NumPending) + info.NumAckPending
	if count == 0 {
		return 0, time.Time{}, nil
	}
	from := info.AckFloor.Stream + 1
	if info.NumAckPending == 0 {
		from = info.Delivered.Stream + 1
	}
	stream, err := t.js.Stream(ctx, t.names.stream(topic))
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("stream %s: %w", t.names.stream(topic), err)
	}
	raw, err := stream.GetMsg(ctx, from, jetstream.WithGetMsgSubject(t.names.subject(topic)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return count, time.Now(), nil // acked meanwhile
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("stream %s: %w", t.names.stream(topic), err)
	}
	// Before its first ack a consumer's floor is 0, and a message stored
	// before the consumer was made (kept for others) is not its own.
	return count, maxTime(raw.Time, info.Created), nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// readNATSPoison gauges the messages of the namespace's poison stream.
func (c *BacklogReader) readNATSPoison(ctx context.Context, r *reading) error {
	n, err := c.cfg.Transport.nats.poisoned(ctx)
	if err == nil {
		r.gauge(PoisonedMessages, float64(n))
	}
	return err
}

// poisoned counts the poison stream's messages.
func (t *natsTransport) poisoned(ctx context.Context) (int, error) {
	stream, err := t.js.Stream(ctx, t.names.poisonStream())
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", t.names.poisonStream(), err)
	}
	return int(stream.CachedInfo().State.Msgs), nil
}
