package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

// RedisEntry is an entry of a stream of a deployment on Redis.
type RedisEntry struct {
	Stream, ID string
	Values     map[string]any
}

// redisStreams are the streams the service writes in a namespace: every
// event's, the command's and the poison stream.
func redisStreams(namespace string) []string {
	streams := []string{
		transport.NamespacedTopic(namespace, transport.CommandTopic("RegisterUser")),
		transport.NamespacedTopic(namespace, transport.PoisonTopic),
	}
	for _, name := range domain.Events.Names() {
		streams = append(streams, transport.NamespacedTopic(namespace, transport.EventTopic(name)))
	}
	return streams
}

// TapRedisStreams gives every stream the deployment writes a consumer group
// that nobody reads (TapGroup), before the service starts: the trimmer
// keeps what a group has not read, so every message the service ever
// publishes stays there for RedisEntries. It needs the deployment's
// namespace.
func (d *Deployment) TapRedisStreams(t testing.TB) {
	t.Helper()
	require.NotEmpty(t, d.Namespace, "a tap needs the namespace before the start")
	client := testenv.RedisClient(t, d.RedisURL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, stream := range redisStreams(d.Namespace) {
		require.NoError(t, client.XGroupCreateMkStream(ctx, stream, TapGroup, "$").Err(), stream)
	}
}

// RedisEntries reads every entry of every stream of the deployment's
// namespace on Redis.
func (d *Deployment) RedisEntries(t testing.TB) []RedisEntry {
	t.Helper()
	client := testenv.RedisClient(t, d.RedisURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var entries []RedisEntry
	for _, key := range testenv.RedisKeys(t, client, d.ServingNamespace()) {
		if kind, err := client.Type(ctx, key).Result(); err != nil || kind != "stream" {
			require.NoError(t, err)
			continue
		}
		messages, err := client.XRange(ctx, key, "-", "+").Result()
		require.NoError(t, err, key)
		for _, m := range messages {
			entries = append(entries, RedisEntry{Stream: key, ID: m.ID, Values: m.Values})
		}
	}
	return entries
}

// AssertNoSecretsInRedis scans every field of the entries.
func AssertNoSecretsInRedis(t testing.TB, entries []RedisEntry, secrets []string) {
	t.Helper()
	for _, e := range entries {
		assert.Empty(t, SecretsIn(fmt.Sprint(e.Values), secrets), "Redis entry %s of %s", e.ID, e.Stream)
	}
}

// PublishedUserIDs counts the UserRegistered messages on the deployment's
// stream by user id, from their payloads (user ids are in the clear).
func (d *Deployment) PublishedUserIDs(t testing.TB) map[string]int {
	t.Helper()
	stream := transport.NamespacedTopic(d.ServingNamespace(), transport.EventTopic("UserRegistered"))
	got := map[string]int{}
	for _, e := range d.RedisEntries(t) {
		if e.Stream != stream {
			continue
		}
		payload, _ := e.Values["payload"].(string)
		var event struct {
			UserID string `json:"user_id"`
		}
		_ = json.Unmarshal([]byte(payload), &event)
		got[event.UserID]++
	}
	return got
}
