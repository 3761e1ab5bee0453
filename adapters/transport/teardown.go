package transport

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"

	"github.com/onboard/onboard/adapters/sqldb"
)

// Topology is what a deployment's service declares on its transport,
// without the namespace: the topics it publishes to and the subscription
// of each handler. The poison topic and its queue are the transport's
// own, and not listed.
type Topology struct {
	Topics   []string
	Handlers []HandlerTopic
}

// TeardownOptions configures Teardown.
type TeardownOptions struct {
	// Topology names the RabbitMQ queues and exchanges of the namespace,
	// which AMQP cannot list; the other transports list what the
	// namespace holds, and need none.
	Topology Topology
	// Force removes the resources even while a service of the namespace
	// seems to be running (see ErrNamespaceInUse).
	Force bool
}

// RemovedResources are the resources of one kind a teardown removed.
type RemovedResources struct {
	// Kind names them, plural: "RabbitMQ queues".
	Kind string
	// Names are theirs, sorted: they hold the namespace, topics and
	// handlers' names, never an address or a credential.
	Names []string
}

// ErrNamespaceInUse is Teardown's refusal, which removed nothing: a
// consumer of the namespace is connected to the broker (RabbitMQ: a queue
// has consumers; NATS: a durable consumer has pull requests waiting;
// Redis: a connection of the namespace's services is open), or the broker
// would not tell.
var ErrNamespaceInUse = errors.New("a service of the namespace seems to be running")

// Teardown removes everything the namespace of cfg holds on its
// transport, the messages they keep included, and returns what it
// removed, kind by kind, even when it fails part way:
//
//   - amqp: the queue of each handler of the topology and the poison
//     queue, and the exchange of each topic (RabbitMQ lists nothing over
//     AMQP: a queue of a handler the topology no longer names stays);
//   - nats: the namespace's two JetStream streams, and with them their
//     consumers;
//   - redis: every key of the namespace ("<ns>.*"): its streams, and with
//     them their consumer groups;
//   - googlecloud: the subscriptions and topics of the project named
//     "<ns>.…";
//   - sqs: the SQS queues named "<ns>_…" (handlers', dead-letter and
//     poison queues) and the SNS topics so named, with their subscriptions;
//   - sql: the namespace's watermill tables (queue and consumer groups
//     on PostgreSQL and MySQL, messages and offsets on SQLite), never
//     the application's own (users, events, outbox...);
//   - gochannel: nothing, it keeps its messages in the process.
//
// It must run while no service of the namespace does: a running service
// would make its resources again, or fail. Where the broker tells
// cheaply that one is connected (amqp, nats, redis), Teardown refuses with
// ErrNamespaceInUse and removes nothing, unless opts.Force.
func Teardown(ctx context.Context, cfg Config, opts TeardownOptions) ([]RemovedResources, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Kind == KindGoChannel {
		return nil, nil
	}
	// Without a namespace nothing tells the deployment's resources from
	// another's.
	if cfg.Namespace == "" {
		return nil, errors.New("teardown: PUBSUB_NAMESPACE is empty: nothing tells this deployment's resources apart")
	}
	switch cfg.Kind {
	case KindSQL:
		return teardownSQL(ctx, cfg.DB, cfg.Namespace)
	case KindAMQP:
		return teardownAMQP(ctx, cfg, opts)
	case KindNATS:
		return teardownNATS(ctx, cfg, opts.Force)
	case KindRedis:
		return teardownRedis(ctx, cfg, opts.Force)
	case KindGoogleCloud:
		return teardownGoogleCloud(ctx, cfg)
	case KindSQS:
		return teardownSQS(ctx, cfg)
	}
	return nil, fmt.Errorf("teardown: unknown transport %q", cfg.Kind)
}

// amqpTopology is the namespace's queues and exchanges on RabbitMQ, as
// the amqp transport names them: a queue per handler, "<topic>_<handler>",
// the poison queue named as its topic, and an exchange per topic.
func (tp Topology) amqpTopology(namespace string) (queues, exchanges []string) {
	poison := NamespacedTopic(namespace, PoisonTopic)
	queues = []string{wamqp.GenerateQueueNameTopicName(poison)}
	exchanges = []string{poison}
	for _, h := range tp.Handlers {
		topic := NamespacedTopic(namespace, h.Topic)
		queues = append(queues, wamqp.GenerateQueueNameTopicNameWithSuffix(h.Handler)(topic))
		exchanges = append(exchanges, topic)
	}
	for _, topic := range tp.Topics {
		exchanges = append(exchanges, NamespacedTopic(namespace, topic))
	}
	return sortedUnique(queues), sortedUnique(exchanges)
}

func sortedUnique(names []string) []string {
	names = slices.Clone(names)
	slices.Sort(names)
	return slices.Compact(names)
}

// removed is a kind of resources, their names sorted.
func removed(kind string, names []string) RemovedResources {
	return RemovedResources{Kind: kind, Names: sortedUnique(names)}
}

// sqlTablePrefixes begin the names of the namespace's tables: on
// PostgreSQL and MySQL a queue and a consumer groups table per topic, on
// SQLite a messages and an offsets table ("watermill_<ns>.poison"). A
// namespace holds no dot or underscore, so no other namespace's table,
// nor the outbox's ("watermill_queue_outbox"), begins so.
func sqlTablePrefixes(namespace string) []string {
	var prefixes []string
	for _, table := range []string{"watermill_queue_", "watermill_groups_", "watermill_", "watermill_offsets_"} {
		prefixes = append(prefixes, table+namespace+".")
	}
	return prefixes
}

// teardownSQL drops the namespace's tables of the sql transport. The
// trigger that wakes the subscribers on PostgreSQL goes with its table;
// the function it calls is shared by every namespace, and stays.
func teardownSQL(ctx context.Context, db *sql.DB, namespace string) ([]RemovedResources, error) {
	tables, err := sqlNamespaceTables(ctx, db, namespace)
	if err != nil {
		return nil, fmt.Errorf("list the tables: %w", err)
	}
	var dropped []string
	for _, table := range tables {
		if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+sqldb.Of(db).Quote(table)); err != nil {
			return []RemovedResources{removed("tables", dropped)}, fmt.Errorf("drop table %s: %w", table, err)
		}
		dropped = append(dropped, table)
	}
	return []RemovedResources{removed("tables", dropped)}, nil
}

// sqlNamespaceTables lists the namespace's tables in the database, sorted.
func sqlNamespaceTables(ctx context.Context, db *sql.DB, namespace string) ([]string, error) {
	d := sqldb.Of(db)
	query := `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	switch {
	case d.Is(sqldb.MySQL):
		query = `SELECT table_name FROM information_schema.tables
			WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'`
	case d.Is(sqldb.SQLite):
		query = `SELECT name FROM sqlite_master WHERE type = 'table'`
	}
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		for _, prefix := range sqlTablePrefixes(namespace) {
			// A quote in the name would end its quoting: no topic has one.
			if strings.HasPrefix(name, prefix) && !strings.ContainsAny(name, "\"`") {
				tables = append(tables, name)
				break
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return sortedUnique(tables), nil
}
