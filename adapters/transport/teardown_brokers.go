package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// teardownAMQP deletes the namespace's queues and exchanges that exist,
// after checking, by a passive declare of each queue, that none has a
// consumer (unless opts.Force).
func teardownAMQP(ctx context.Context, cfg Config, opts TeardownOptions) ([]RemovedResources, error) {
	if err := checkAMQPURL(cfg.AMQPURL); err != nil {
		return nil, err
	}
	conn, err := amqp091.DialConfig(cfg.AMQPURL, amqp091.Config{
		Heartbeat: 10 * time.Second, Locale: "en_US", Dial: amqp091.DefaultDial(5 * time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("RabbitMQ (AMQP_URL): %w", err)
	}
	type result struct {
		removed []RemovedResources
		err     error
	}
	done := make(chan result, 1)
	go func() { // amqp091 takes no context: closing the connection ends a call that hangs
		r, err := amqpTeardown{conn: conn}.run(cfg.Namespace, opts)
		done <- result{r, err}
	}()
	select {
	case r := <-done:
		_ = conn.Close()
		return r.removed, r.err
	case <-ctx.Done():
		_ = conn.Close()
		r := <-done
		return r.removed, fmt.Errorf("teardown on RabbitMQ: %w", ctx.Err())
	}
}

type amqpTeardown struct{ conn *amqp091.Connection }

func (a amqpTeardown) run(namespace string, opts TeardownOptions) ([]RemovedResources, error) {
	queues, exchanges := opts.Topology.amqpTopology(namespace)
	var existingQueues, existingExchanges, busy []string
	for _, queue := range queues {
		var info amqp091.Queue
		found, err := a.onChannel(func(ch *amqp091.Channel) (err error) {
			info, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", queue, err)
		}
		if found {
			existingQueues = append(existingQueues, queue)
		}
		if info.Consumers > 0 {
			busy = append(busy, fmt.Sprintf("%s (%d)", queue, info.Consumers))
		}
	}
	if len(busy) > 0 && !opts.Force {
		return nil, fmt.Errorf("%w: RabbitMQ queues have consumers: %s", ErrNamespaceInUse, strings.Join(busy, ", "))
	}
	for _, exchange := range exchanges {
		found, err := a.onChannel(func(ch *amqp091.Channel) error {
			return ch.ExchangeDeclarePassive(exchange, "fanout", true, false, false, false, nil)
		})
		if err != nil {
			return nil, fmt.Errorf("exchange %s: %w", exchange, err)
		}
		if found {
			existingExchanges = append(existingExchanges, exchange)
		}
	}
	var deletedQueues, deletedExchanges []string
	report := func() []RemovedResources {
		return []RemovedResources{removed("RabbitMQ queues", deletedQueues), removed("RabbitMQ exchanges", deletedExchanges)}
	}
	for _, queue := range existingQueues {
		if _, err := a.onChannel(func(ch *amqp091.Channel) error {
			_, err := ch.QueueDelete(queue, false, false, false)
			return err
		}); err != nil {
			return report(), fmt.Errorf("delete queue %s: %w", queue, err)
		}
		deletedQueues = append(deletedQueues, queue)
	}
	for _, exchange := range existingExchanges {
		if _, err := a.onChannel(func(ch *amqp091.Channel) error {
			return ch.ExchangeDelete(exchange, false, false)
		}); err != nil {
			return report(), fmt.Errorf("delete exchange %s: %w", exchange, err)
		}
		deletedExchanges = append(deletedExchanges, exchange)
	}
	return report(), nil
}

// onChannel runs f on a channel of its own (RabbitMQ closes the channel an
// error happens on); found is false when RabbitMQ has no such queue or
// exchange.
func (a amqpTeardown) onChannel(f func(*amqp091.Channel) error) (found bool, err error) {
	ch, err := a.conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open a channel: %w", err)
	}
	err = f(ch)
	var amqpErr *amqp091.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp091.NotFound {
		return false, nil // the channel is closed already
	}
	_ = ch.Close()
	return err == nil, err
}
