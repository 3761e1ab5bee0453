package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/onboard/onboard/internal/e2e"
)

// A binary built with fewer transports (make build TRANSPORTS='sql amqp')
// serves on what it kept, and refuses to start on a transport it left out,
// naming the build tag that did it.
func TestE2E_BuildWithFewerTransports(t *testing.T) {
	t.Parallel()
	binary := e2e.BinaryWith(t, "sql amqp")

	proc := e2e.StartBinaryIn(t, binary, t.TempDir(), map[string]string{"PUBSUB": ""}) // the embedded defaults
	api := e2e.NewClient(proc.WaitServing(t))
	u := api.MustRegister(t, e2e.User{Name: "Lean Build", Email: "lean@example.com", Password: "correct horse battery lean"})
	assert.Eventually(t, func() bool { return api.HasSignupPoints(u.ID) }, e2e.EffectsTimeout, e2e.Poll, "signup points")
	e2e.AssertNoPanic(t, proc)

	for kind, vars := range map[string]map[string]string{
		"nats":        {"PUBSUB_NAMESPACE": "lean"},
		"redis":       {},
		"googlecloud": {"GOOGLE_CLOUD_PROJECT": "lean-project"},
		"sqs":         {"AWS_REGION": "eu-west-1"},
	} {
		vars["PUBSUB"] = kind
		left := e2e.StartBinaryIn(t, binary, t.TempDir(), vars)
		left.WaitFailed(t)
		assert.NotZero(t, left.ExitCode(), kind)
		assert.Contains(t, left.Stderr.String(), "leaves the "+kind+" transport out (built with -tags no"+kind+")", kind)
	}
}
