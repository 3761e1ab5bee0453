//go:build !noredis

package transport

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

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
