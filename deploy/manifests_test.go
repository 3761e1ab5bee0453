package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/yaml"
)

// scheme knows the kinds the manifests may hold.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// decodeStrict decodes one manifest into the Kubernetes type its apiVersion
// and kind name, as the API server's strict field validation does: an
// unknown field, a field in the wrong case and a duplicate field are errors.
func decodeStrict(data []byte) (runtime.Object, error) {
	serializer := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
	obj, _, err := serializer.Decode(data, nil, nil)
	return obj, err
}

// manifest reads and decodes file, which must hold a T.
func manifest[T runtime.Object](t *testing.T, file string) T {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	obj, err := decodeStrict(data)
	require.NoError(t, err, file)
	typed, ok := obj.(T)
	require.True(t, ok, "%s holds a %T", file, obj)
	return typed
}

// kustomization is the part of kustomization.yaml these manifests use.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// The kustomization lists every manifest of the folder, and each decodes
// strictly into the kind it names.
func TestManifests_DecodeStrictly(t *testing.T) {
	data, err := os.ReadFile("kustomization.yaml")
	require.NoError(t, err)
	var k kustomization
	require.NoError(t, yaml.UnmarshalStrict(data, &k))
	assert.Equal(t, "kustomize.config.k8s.io/v1beta1", k.APIVersion)
	assert.Equal(t, "Kustomization", k.Kind)

	files, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	files = slices.DeleteFunc(files, func(f string) bool { return f == "kustomization.yaml" })
	assert.ElementsMatch(t, files, k.Resources, "kustomization.yaml lists every manifest")

	kinds := map[string]string{}
	for _, file := range k.Resources {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		obj, err := decodeStrict(data)
		require.NoError(t, err, file)
		kinds[file] = obj.GetObjectKind().GroupVersionKind().String()
	}
	assert.Equal(t, map[string]string{
		"configmap.yaml":           "/v1, Kind=ConfigMap",
		"secret.yaml":              "/v1, Kind=Secret",
		"deployment.yaml":          "apps/v1, Kind=Deployment",
		"service.yaml":             "/v1, Kind=Service",
		"poddisruptionbudget.yaml": "policy/v1, Kind=PodDisruptionBudget",
	}, kinds)

	deployment := manifest[*appsv1.Deployment](t, "deployment.yaml")
	require.Len(t, k.Images, 1)
	assert.Equal(t, deployment.Spec.Template.Spec.Containers[0].Image, k.Images[0].Name,
		"kustomization.yaml's images names the Deployment's image")
}

// The decoding refuses what the API server would: each mistake below fails.
func TestManifests_StrictDecodingRefusesMistakes(t *testing.T) {
	data, err := os.ReadFile("deployment.yaml")
	require.NoError(t, err)
	_, err = decodeStrict(data)
	require.NoError(t, err)
	for name, edit := range map[string][2]string{
		"unknown field":      {"readinessProbe:", "readynessProbe:"},
		"field in bad case":  {"containerPort:", "containerport:"},
		"wrong type":         {"replicas: 3", "replicas: three"},
		"bad quantity":       {"memory: 256Mi", "memory: 256MB!"},
		"duplicate field":    {"replicas: 3", "replicas: 3\n  replicas: 4"},
		"unknown apiVersion": {"apiVersion: apps/v1", "apiVersion: apps/v2"},
	} {
		require.Contains(t, string(data), edit[0], name)
		_, err := decodeStrict([]byte(strings.Replace(string(data), edit[0], edit[1], 1)))
		assert.Error(t, err, name)
	}
}
