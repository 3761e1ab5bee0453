//go:build !nonats

package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

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
