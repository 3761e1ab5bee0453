package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
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

// teardownNATS deletes the namespace's streams, and with them their
// consumers, after checking that no durable consumer has a pull request
// waiting, as a running handler always has (unless force).
func teardownNATS(ctx context.Context, cfg Config, force bool) ([]RemovedResources, error) {
	if err := checkNATSURL(cfg.NATSURL); err != nil {
		return nil, err
	}
	names := natsNames{cfg.Namespace}
	conn, err := nats.Connect(cfg.NATSURL, nats.Name("onboard "+names.namespace+" teardown"), nats.Timeout(natsTimeout))
	if err != nil {
		return nil, fmt.Errorf("NATS (NATS_URL): %w", err)
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		return nil, err
	}
	var streams, busy []string
	consumers := map[string][]string{} // by stream
	for _, name := range []string{names.messagesStream(), names.poisonStream()} {
		stream, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		streams = append(streams, name)
		lister := stream.ListConsumers(ctx)
		for info := range lister.Info() {
			consumers[name] = append(consumers[name], info.Name)
			if info.NumWaiting > 0 || info.PushBound {
				busy = append(busy, info.Name)
			}
		}
		if err := lister.Err(); err != nil {
			return nil, fmt.Errorf("the consumers of stream %s: %w", name, err)
		}
	}
	if len(busy) > 0 && !force {
		return nil, fmt.Errorf("%w: JetStream consumers have pull requests waiting: %s", ErrNamespaceInUse,
			strings.Join(busy, ", "))
	}
	var deleted, deletedConsumers []string
	report := func() []RemovedResources {
		return []RemovedResources{removed("JetStream streams", deleted), removed("JetStream consumers", deletedConsumers)}
	}
	for _, name := range streams {
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return report(), fmt.Errorf("delete stream %s: %w", name, err)
		}
		deleted, deletedConsumers = append(deleted, name), append(deletedConsumers, consumers[name]...)
	}
	return report(), nil
}

// redisClientName names the connections of the redis transport of a
// namespace, so that CLIENT LIST tells whether a service of it runs:
// REDIS_URL's client_name if it gives one, else "onboard:<ns>".
func redisClientName(options *redis.Options, namespace string) string {
	if options.ClientName != "" {
		return options.ClientName
	}
	return "onboard:" + namespace
}

// teardownRedis deletes every key of the namespace: its streams, and with
// them their consumer groups. Unless force, it refuses while a connection
// named for the namespace (redisClientName) is open.
func teardownRedis(ctx context.Context, cfg Config, force bool) ([]RemovedResources, error) {
	options, err := parseRedisURL(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	serviceName := redisClientName(options, cfg.Namespace)
	options.ClientName = "" // this connection is none of the service's
	options.DialTimeout = redisTimeout
	client := redis.NewClient(options)
	defer func() { _ = client.Close() }()
	if !force {
		open, err := redisConnectionsNamed(ctx, client, serviceName)
		if err != nil {
			return nil, fmt.Errorf("%w: Redis would not list its connections (CLIENT LIST: %w)", ErrNamespaceInUse, err)
		}
		if open > 0 {
			return nil, fmt.Errorf("%w: %d connections named %s are open on Redis", ErrNamespaceInUse, open, serviceName)
		}
	}
	var keys []string
	iter := client.Scan(ctx, 0, cfg.Namespace+".*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("list the namespace's keys: %w", err)
	}
	var streams, groups, others []string
	report := func() []RemovedResources {
		out := []RemovedResources{removed("Redis streams", streams), removed("Redis consumer groups", groups)}
		if len(others) > 0 {
			out = append(out, removed("other Redis keys", others))
		}
		return out
	}
	for _, key := range sortedUnique(keys) {
		kind, err := client.Type(ctx, key).Result()
		if err != nil {
			return report(), fmt.Errorf("key %s: %w", key, err)
		}
		var keyGroups []string
		if kind == "stream" {
			infos, err := client.XInfoGroups(ctx, key).Result()
			if err != nil && !isNoSuchKey(err) {
				return report(), fmt.Errorf("the consumer groups of %s: %w", key, err)
			}
			for _, g := range infos {
				keyGroups = append(keyGroups, g.Name+" on "+key)
			}
		}
		n, err := client.Del(ctx, key).Result()
		if err != nil {
			return report(), fmt.Errorf("delete %s: %w", key, err)
		}
		switch {
		case n == 0: // deleted meanwhile
		case kind == "stream":
			streams, groups = append(streams, key), append(groups, keyGroups...)
		default:
			others = append(others, key)
		}
	}
	return report(), nil
}

// redisConnectionsNamed counts the connections to Redis named name.
func redisConnectionsNamed(ctx context.Context, client *redis.Client, name string) (int, error) {
	list, err := client.ClientList(ctx).Result()
	if err != nil {
		return 0, err
	}
	count := 0
	for line := range strings.SplitSeq(list, "\n") {
		for field := range strings.FieldsSeq(line) {
			if value, ok := strings.CutPrefix(field, "name="); ok && value == name {
				count++
			}
		}
	}
	return count, nil
}
