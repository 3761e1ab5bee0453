package deploy

import (
	"encoding/base64"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/onboard/onboard/service"
)

// secretVariables may carry a password or a token: the Deployment takes
// them from the Secret, never from the ConfigMap or a literal.
var secretVariables = []string{"DATABASE_URL", "AMQP_URL", "NATS_URL", "REDIS_URL", "SMTP_URL", "ADMIN_TOKEN", "MASTER_KEY",
	"MASTER_KEYS"}

// container is the Deployment's one container.
func container(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	require.Len(t, d.Spec.Template.Spec.Containers, 1)
	return d.Spec.Template.Spec.Containers[0]
}

// Several replicas, probed on the service's own paths, with a grace period
// longer than its stop, and a PodDisruptionBudget that keeps all but one.
func TestDeployment_ReplicasProbesAndStop(t *testing.T) {
	d := manifest[*appsv1.Deployment](t, "deployment.yaml")
	require.NotNil(t, d.Spec.Replicas)
	assert.GreaterOrEqual(t, *d.Spec.Replicas, int32(2), "several replicas")
	c := container(t, d)

	config := manifest[*corev1.ConfigMap](t, "configmap.yaml").Data
	require.Len(t, c.Ports, 2)
	assert.Equal(t, "http", c.Ports[0].Name)
	assert.Equal(t, portOf(t, config["HTTP_ADDR"]), c.Ports[0].ContainerPort, "the container port is HTTP_ADDR's")
	// On PostgreSQL the API's port serves no /metrics: METRICS_ADDR does.
	assert.Equal(t, "metrics", c.Ports[1].Name)
	assert.Equal(t, portOf(t, config["METRICS_ADDR"]), c.Ports[1].ContainerPort, "the metrics port is METRICS_ADDR's")
	for probe, path := range map[*corev1.Probe]string{c.StartupProbe: "/healthz", c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		require.NotNil(t, probe)
		require.NotNil(t, probe.HTTPGet, path)
		assert.Equal(t, path, probe.HTTPGet.Path)
		assert.Equal(t, intstr.FromString("http"), probe.HTTPGet.Port)
		// /readyz gives up on a dependency after 2 s.
		assert.GreaterOrEqual(t, probe.TimeoutSeconds, int32(3), path)
	}

	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		require.NotNil(t, c.Lifecycle.PreStop.Sleep, "the image has no shell: no exec hook")
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	require.NotNil(t, d.Spec.Template.Spec.TerminationGracePeriodSeconds)
	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	assert.Greater(t, grace, preStop+service.StopBound+5*time.Second,
		"SIGKILL comes after the preStop hook, the drain, the requests in flight and closing")

	pdb := manifest[*policyv1.PodDisruptionBudget](t, "poddisruptionbudget.yaml")
	assert.True(t, selects(t, pdb.Spec.Selector, d.Spec.Template.Labels), "the budget covers the pods")
	require.NotNil(t, pdb.Spec.MaxUnavailable)
	assert.Less(t, pdb.Spec.MaxUnavailable.IntValue(), int(*d.Spec.Replicas))

	assert.True(t, selects(t, d.Spec.Selector, d.Spec.Template.Labels))
	svc := manifest[*corev1.Service](t, "service.yaml")
	assert.True(t, selects(t, metav1.SetAsLabelSelector(svc.Spec.Selector), d.Spec.Template.Labels),
		"the Service selects the pods")
	require.Len(t, svc.Spec.Ports, 1)
	assert.Equal(t, intstr.FromString("http"), svc.Spec.Ports[0].TargetPort)
}

// The pods run as the image's non-root user, on a read-only root, without
// capabilities, with requests and limits.
func TestDeployment_SecurityAndResources(t *testing.T) {
	d := manifest[*appsv1.Deployment](t, "deployment.yaml")
	pod := d.Spec.Template.Spec.SecurityContext
	require.NotNil(t, pod)
	assert.Equal(t, new(true), pod.RunAsNonRoot)
	assert.Equal(t, new(int64(imageUID(t))), pod.RunAsUser, "the Dockerfile's USER")
	assert.Equal(t, new(false), d.Spec.Template.Spec.AutomountServiceAccountToken, "the service calls no Kubernetes API")

	c := container(t, d)
	sc := c.SecurityContext
	require.NotNil(t, sc)
	assert.Equal(t, new(false), sc.AllowPrivilegeEscalation)
	assert.Equal(t, new(true), sc.ReadOnlyRootFilesystem)
	require.NotNil(t, sc.Capabilities)
	assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
	assert.Empty(t, sc.Capabilities.Add)
	assert.Nil(t, sc.Privileged)

	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		request, limit := c.Resources.Requests[name], c.Resources.Limits[name]
		require.False(t, request.IsZero(), "a %s request", name)
		require.False(t, limit.IsZero(), "a %s limit", name)
		assert.LessOrEqual(t, request.Cmp(limit), 0, "%s: request ≤ limit", name)
	}
	// The peak RSS measured under a flood (the comment above resources).
	const measuredPeak = 72_136 << 10
	memory := c.Resources.Requests[corev1.ResourceMemory]
	assert.Greater(t, memory.Value(), int64(measuredPeak), "the memory request covers the measured peak")
}

// Every variable the pods get is one the service reads; those that may
// carry a secret come from the Secret; together they are a configuration
// the service accepts, on a database several replicas can share.
func TestDeployment_EnvironmentIsTheServiceConfiguration(t *testing.T) {
	d := manifest[*appsv1.Deployment](t, "deployment.yaml")
	configMap := manifest[*corev1.ConfigMap](t, "configmap.yaml")
	secret := manifest[*corev1.Secret](t, "secret.yaml")
	c := container(t, d)

	env := map[string]string{}
	require.Len(t, c.EnvFrom, 1)
	require.NotNil(t, c.EnvFrom[0].ConfigMapRef)
	assert.Equal(t, configMap.Name, c.EnvFrom[0].ConfigMapRef.Name)
	for name, value := range configMap.Data {
		assert.True(t, isVariable(name), "the service reads %s", name)
		assert.NotContains(t, secretVariables, name, "%s is in the Secret, not the ConfigMap", name)
		env[name] = value
	}
	var fromSecret []string
	for _, e := range c.Env {
		assert.True(t, isVariable(e.Name), "the service reads %s", e.Name)
		if !slices.Contains(secretVariables, e.Name) {
			continue
		}
		assert.Empty(t, e.Value, "%s is no literal", e.Name)
		require.NotNil(t, e.ValueFrom, e.Name)
		ref := e.ValueFrom.SecretKeyRef
		require.NotNil(t, ref, "%s comes from the Secret", e.Name)
		assert.Equal(t, secret.Name, ref.Name, e.Name)
		value, ok := secret.StringData[ref.Key]
		assert.True(t, ok, "the Secret holds %s", ref.Key)
		env[e.Name] = value
		fromSecret = append(fromSecret, e.Name)
	}
	assert.ElementsMatch(t, secretVariables, fromSecret)
	for key := range secret.StringData {
		assert.Contains(t, fromSecret, key, "the Deployment reads the Secret's %s", key)
	}
	assert.Empty(t, secret.Data, "placeholders in stringData, readable")
	for key, value := range secret.StringData {
		if value != "" {
			assert.Contains(t, value, "REPLACE-ME", "%s is a placeholder", key)
		}
	}

	// A placeholder master key stops the start: nobody runs on a key
	// written in this repository.
	_, err := service.LoadConfig(func(name string) string { return env[name] })
	require.ErrorContains(t, err, "MASTER_KEY")
	env["MASTER_KEY"] = base64.StdEncoding.EncodeToString(make([]byte, 32))
	cfg, err := service.LoadConfig(func(name string) string { return env[name] })
	require.NoError(t, err, "the service accepts the configuration, the master key replaced")
	require.NotNil(t, cfg.MasterKeys, "several replicas on a database server share MASTER_KEY")
	assert.Equal(t, "amqp", cfg.PubSub)
	database, err := url.Parse(cfg.DatabaseURL)
	require.NoError(t, err)
	assert.Contains(t, []string{"postgres", "mysql"}, database.Scheme, "several replicas need a database server")

	// The ConfigMap's other transport: PUBSUB=redis reads REDIS_URL from the Secret.
	env["PUBSUB"] = "redis"
	cfg, err = service.LoadConfig(func(name string) string { return env[name] })
	require.NoError(t, err, "the service accepts PUBSUB=redis")
	redisURL, err := url.Parse(cfg.RedisURL)
	require.NoError(t, err)
	assert.Equal(t, "redis.REPLACE-ME.invalid", redisURL.Hostname(), "REDIS_URL comes from the Secret")
}

// portOf is the port of a listen address such as ":8080".
func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err, addr)
	n, err := strconv.ParseInt(port, 10, 32)
	require.NoError(t, err, addr)
	return int32(n)
}

// selects reports whether selector matches the labels.
func selects(t *testing.T, selector *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	require.NotNil(t, selector)
	s, err := metav1.LabelSelectorAsSelector(selector)
	require.NoError(t, err)
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

// imageUID is the user of the Dockerfile's final stage.
func imageUID(t *testing.T) int {
	t.Helper()
	user := lastArgs(t, dockerfile(t), "USER")
	uid, err := strconv.Atoi(strings.Split(user, ":")[0])
	require.NoError(t, err, "USER %s is numeric", user)
	return uid
}
