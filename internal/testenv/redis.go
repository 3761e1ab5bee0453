package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// RedisNamespace is a PUBSUB_NAMESPACE of this test alone on the Redis
// server of TEST_REDIS_URL, whose URL it returns too. The tests share that
// server's database 0: every key of the namespace is deleted when the test
// ends.
func RedisNamespace(t testing.TB) (redisURL, namespace string) {
	t.Helper()
	redisURL = URL(t, RedisURLVar)
	namespace = "t" + strings.ReplaceAll(uuid.NewString(), "-", "")[:10]
	t.Cleanup(func() { DeleteRedisNamespace(t, redisURL, namespace) })
	return redisURL, namespace
}

// DeleteRedisNamespace deletes every key of a namespace: "namespace.*".
func DeleteRedisNamespace(t testing.TB, redisURL, namespace string) {
	t.Helper()
	client := RedisClient(t, redisURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys := RedisKeys(t, client, namespace)
	if len(keys) > 0 {
		if err := client.Del(ctx, keys...).Err(); err != nil {
			t.Logf("delete the Redis keys of namespace %s: %v", namespace, err)
		}
	}
}

// RedisKeys are the keys of a namespace, sorted.
func RedisKeys(t testing.TB, client *redis.Client, namespace string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	iter := client.Scan(ctx, 0, namespace+".*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("list the Redis keys of namespace %s: %v", namespace, err)
	}
	slices.Sort(keys)
	return keys
}

// RedisClient is a client of the server at redisURL, closed when the test ends.
func RedisClient(t testing.TB, redisURL string) *redis.Client {
	t.Helper()
	options, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("Redis URL: %v", err)
	}
	client := redis.NewClient(options)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// RedisServer is a redis-server of a test's own, for what a test may not
// do to the shared one: restart it, or configure it otherwise.
type RedisServer struct {
	// URL is its address, database 0.
	URL string
	serverProcess
}

// StartRedis runs redis-server on a free port of 127.0.0.1, in a directory
// of the test's own, with args added to its command line (such as
// "--appendonly", "yes"), and stops it when the test ends. Like the shared
// server's tests it runs when TEST_REDIS_URL is set; it needs redis-server
// on the PATH.
func StartRedis(t testing.TB, args ...string) *RedisServer {
	t.Helper()
	URL(t, RedisURLVar)
	binary, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("REQUIRE_SERVICES") == "1" {
			t.Fatalf("redis-server is not on the PATH and REQUIRE_SERVICES=1")
		}
		t.Skipf("redis-server is not on the PATH: skipping")
	}
	port := freePort(t)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "redis.log")
	s := &RedisServer{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	client := RedisClient(t, s.URL)
	s.serverProcess = serverProcess{
		name: "redis-server",
		args: append([]string{binary, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
			"--save", "", "--logfile", logFile}, args...),
		answers: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			err := client.Ping(ctx).Err()
			var refused redis.Error // it answers, if only to refuse (a password is required)
			if errors.As(err, &refused) {
				return nil
			}
			return err
		},
		log: func() string { out, _ := os.ReadFile(logFile); return string(out) },
	}
	t.Cleanup(func() { s.Stop(t) })
	s.Start(t)
	return s
}
