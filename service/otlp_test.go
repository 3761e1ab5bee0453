package service

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/proto"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testsmtp"
)

// collector is an OTLP/HTTP endpoint that keeps the spans it receives.
type collector struct {
	*httptest.Server
	mu       sync.Mutex
	services []string // the service.name of each batch
	spans    []string // span names
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" ||
			r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces in protobuf", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, attr := range rs.GetResource().GetAttributes() {
				if attr.GetKey() == "service.name" {
					c.services = append(c.services, attr.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, span := range ss.GetSpans() {
					c.spans = append(c.spans, span.GetName())
				}
			}
		}
		c.mu.Unlock()
		answer, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(answer)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) received() (services, spans []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.services), slices.Clone(c.spans)
}

// Configured by OTEL_EXPORTER_OTLP_ENDPOINT alone, the service exports the
// spans of a registration over OTLP/HTTP, the last ones at its stop.
func TestService_ExportsSpansOverOTLP(t *testing.T) {
	otlp := startCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.URL)
	t.Setenv("OTEL_SERVICE_NAME", "onboard-otlp-test")
	smtp := testsmtp.Start(t)
	want := tracedConfig(t, transport.KindGoChannel, testenv.SQLiteDatabase(t), "", smtp)
	env := map[string]string{"PUBSUB": want.PubSub, "PUBSUB_NAMESPACE": want.Namespace, "DATABASE_URL": want.DatabaseURL,
		"SMTP_URL": want.SMTPURL, "HTTP_ADDR": want.HTTPAddr}
	cfg, err := LoadConfig(func(name string) string {
		if strings.HasPrefix(name, "OTEL_") {
			return os.Getenv(name)
		}
		return env[name]
	})
	require.NoError(t, err)
	require.True(t, cfg.ExportTraces, "an endpoint turns the export on")
	cfg.BcryptCost = bcrypt.MinCost
	s := startTracedService(t, cfg, smtp)

	s.register("grace@example.com", nil)
	require.Eventually(t, func() bool { return strings.Count(s.logs.String(), `"msg":"message handled"`) >= 2 },
		serviceWait, 20*time.Millisecond, "both handlers are done")
	s.stop()

	services, spans := otlp.received()
	for name := range registrationSpans(cfg.PubSub) {
		assert.Contains(t, spans, name)
	}
	require.NotEmpty(t, services)
	for _, name := range services {
		assert.Equal(t, "onboard-otlp-test", name, "OTEL_SERVICE_NAME names the service")
	}
	assert.NotContains(t, s.logs.String(), "spans not exported")
}

// Without an endpoint no span is made, but the trace a trusted caller sent
// in its traceparent is carried through the outbox to the handlers and
// logged.
func TestService_WithoutExportCarriesATrustedCallersTrace(t *testing.T) {
	smtp := testsmtp.Start(t)
	cfg := tracedConfig(t, transport.KindGoChannel, testenv.SQLiteDatabase(t), "", smtp)
	cfg.TrustClientTraceparent = true
	s := startTracedService(t, cfg, smtp)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	id := s.register("barbara@example.com", http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}})
	require.Eventually(t, func() bool { return strings.Count(s.logs.String(), `"msg":"message handled"`) >= 2 },
		serviceWait, 20*time.Millisecond, "both handlers are done")
	assertLogsCarryTrace(t, s.logs.String(), traceID, id)
}
