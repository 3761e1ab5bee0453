package deploy

import (
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/onboard/onboard/service"
)

// composeService is the part of a docker-compose.yml service checked here.
type composeService struct {
	Profiles    []string          `json:"profiles"`
	Build       string            `json:"build"`
	Image       string            `json:"image"`
	Environment map[string]string `json:"environment"`
	Ports       []string          `json:"ports"`
	DependsOn   map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Healthcheck *struct {
		Test []string `json:"test"`
	} `json:"healthcheck"`
	Command []string `json:"command"`
	Volumes []string `json:"volumes"`
}

// composeFile is docker-compose.yml's services and named volumes.
type composeFile struct {
	Services map[string]composeService `json:"services"`
	Volumes  map[string]any            `json:"volumes"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	var compose composeFile
	require.NoError(t, yaml.Unmarshal(data, &compose))
	return compose
}

// docker-compose.yml runs the service under the profile app, built from the
// Dockerfile, once PostgreSQL and RabbitMQ are healthy, with a configuration
// it accepts that names them; `docker compose up` alone still starts the
// servers the tests use, and only those.
func TestCompose_TheServiceOnPostgresAndRabbitMQ(t *testing.T) {
	compose := readCompose(t)

	for name, s := range compose.Services {
		if name != "onboard" {
			assert.Empty(t, s.Profiles, "%s starts without a profile", name)
			assert.NotNil(t, s.Healthcheck, "%s has a health check for --wait", name)
		}
	}
	app, ok := compose.Services["onboard"]
	require.True(t, ok, "docker-compose.yml runs the service")
	assert.Equal(t, []string{"app"}, app.Profiles)
	assert.Equal(t, ".", app.Build, "built from the Dockerfile")
	require.Len(t, app.DependsOn, 2)
	for _, dependency := range []string{"postgres", "rabbitmq"} {
		assert.Equal(t, "service_healthy", app.DependsOn[dependency].Condition, dependency)
		assert.NotNil(t, compose.Services[dependency].Healthcheck, dependency)
	}

	for name := range app.Environment {
		assert.True(t, isVariable(name), "the service reads %s", name)
	}
	cfg, err := service.LoadConfig(func(name string) string { return app.Environment[name] })
	require.NoError(t, err)
	assert.Equal(t, "amqp", cfg.PubSub)
	assert.NotNil(t, cfg.MasterKeys, "PostgreSQL needs MASTER_KEY")
	for variable, host := range map[string]string{cfg.DatabaseURL: "postgres", cfg.AMQPURL: "rabbitmq"} {
		u, err := url.Parse(variable)
		require.NoError(t, err)
		assert.Equal(t, host, u.Hostname(), "the compose network's name of the server")
	}
	require.Len(t, app.Ports, 1)
	assert.True(t, strings.HasSuffix(app.Ports[0], ":"+strings.TrimPrefix(cfg.HTTPAddr, ":")),
		"%s publishes HTTP_ADDR's port", app.Ports[0])
}

// isVariable reports whether the service reads the variable name.
func isVariable(name string) bool {
	for _, v := range service.Variables {
		if v.Name == name {
			return true
		}
	}
	return false
}

// docker-compose.yml's NATS runs JetStream, its store in a named volume,
// so that its streams outlive the container.
func TestCompose_NATSKeepsItsStreams(t *testing.T) {
	compose := readCompose(t)
	nats, ok := compose.Services["nats"]
	require.True(t, ok, "docker-compose.yml runs NATS")
	assert.Contains(t, nats.Command, "-js", "JetStream on")
	i := slices.Index(nats.Command, "-sd")
	require.GreaterOrEqual(t, i, 0, "a store directory")
	require.Less(t, i+1, len(nats.Command))
	require.Len(t, nats.Volumes, 1)
	volume, dir, _ := strings.Cut(nats.Volumes[0], ":")
	assert.Equal(t, nats.Command[i+1], dir, "the store is the volume")
	assert.Contains(t, compose.Volumes, volume, "a named volume")
	assert.Contains(t, nats.Ports, "127.0.0.1:4222:4222", "on the port of the tests' TEST_NATS_URL")
}

// docker-compose.yml's Redis keeps an append-only file, fsynced every
// second, on a named volume: its streams outlive its restart and the
// container's.
func TestCompose_RedisKeepsItsAppendOnlyFile(t *testing.T) {
	compose := readCompose(t)
	redis, ok := compose.Services["redis"]
	require.True(t, ok, "docker-compose.yml runs Redis")
	command := strings.Join(redis.Command, " ")
	assert.Contains(t, command, "--appendonly yes")
	assert.Contains(t, command, "--appendfsync everysec")
	require.Len(t, redis.Volumes, 1)
	volume, path, _ := strings.Cut(redis.Volumes[0], ":")
	assert.Equal(t, "/data", path, "the image's working directory, where the file is written")
	assert.Contains(t, compose.Volumes, volume, "a named volume")
	assert.Equal(t, []string{"127.0.0.1:6379:6379"}, redis.Ports, "where TEST_REDIS_URL and REDIS_URL's default look")
}

// docker-compose.yml runs a Pub/Sub emulator where TEST_PUBSUB_EMULATOR_HOST
// and docs/operations.md's PUBSUB_EMULATOR_HOST look, with a health check.
func TestCompose_PubSubEmulator(t *testing.T) {
	compose := readCompose(t)
	emulator, ok := compose.Services["pubsub-emulator"]
	require.True(t, ok, "docker-compose.yml runs a Pub/Sub emulator")
	assert.Contains(t, strings.Join(emulator.Command, " "), "emulators pubsub start --host-port=0.0.0.0:8085")
	assert.Equal(t, []string{"127.0.0.1:8085:8085"}, emulator.Ports)
	assert.NotNil(t, emulator.Healthcheck, "--wait waits for it")
}

// docker-compose.yml runs an SQS and SNS emulator where
// TEST_AWS_ENDPOINT_URL and docs/operations.md's AWS_ENDPOINT_URL look, with a
// health check.
func TestCompose_SQSEmulator(t *testing.T) {
	compose := readCompose(t)
	emulator, ok := compose.Services["sqs-emulator"]
	require.True(t, ok, "docker-compose.yml runs an SQS emulator")
	assert.Equal(t, []string{"127.0.0.1:4100:4566"}, emulator.Ports)
	assert.NotNil(t, emulator.Healthcheck, "--wait waits for it")
}
