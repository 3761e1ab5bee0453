package transport_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
)

func TestNewTransport_UnknownKind(t *testing.T) {
	for _, kind := range []string{"", "kafka", "GoChannel", "amqp "} {
		t.Run(fmt.Sprintf("%q", kind), func(t *testing.T) {
			tr, err := transport.NewTransport(transport.Config{Kind: kind, AMQPURL: "amqp://guest:s3cret@127.0.0.1:5672/"})
			require.Error(t, err)
			assert.Nil(t, tr)
			assert.Contains(t, err.Error(), "PUBSUB")
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestNewTransport_AMQPMalformedURL(t *testing.T) {
	const password = "s3cret-Pa55"
	for _, rawURL := range []string{
		"",
		"amqp://guest:" + password + "@127.0.0.1:notaport/",
		"http://guest:" + password + "@127.0.0.1:5672/",
		"guest:" + password + "@127.0.0.1:5672",
		"amqp://guest:" + password + "@/",
		"amqp://guest:" + password + "@127.0.0.1:5672/%zz",
		"amqp://guest:" + password + "@127.0.0.1:5672/a b",
		"amqp://guest:" + password + "@127.0.0.1:99999999999/",
		"amqp://guest:" + password + "@127.0.0.1:5672/\x7f",
	} {
		t.Run(fmt.Sprintf("%q", rawURL), func(t *testing.T) {
			start := time.Now()
			tr, err := transport.NewTransport(transport.Config{Kind: transport.KindAMQP, AMQPURL: rawURL})
			if tr != nil {
				_ = tr.Close()
			}
			require.Error(t, err)
			t.Logf("error: %v", err)
			assert.Nil(t, tr)
			assert.NotContains(t, err.Error(), password, "the error never echoes the password")
			assert.NotContains(t, err.Error(), "guest:", "the error never echoes the URL")
			assert.Less(t, time.Since(start), 15*time.Second)
		})
	}
}

// TestNewTransport_AMQPFailsFast: an unreachable broker or a wrong password
// is an error at once (the service must exit within 15 s), without the password.
func TestNewTransport_AMQPFailsFast(t *testing.T) {
	const password = "wrong-s3cret-Pa55"
	cases := map[string]func(t *testing.T) string{
		"unreachable": func(*testing.T) string { return "amqp://guest:" + password + "@127.0.0.1:1/" },
		"wrong password": func(t *testing.T) string {
			u, err := url.Parse(testenv.URL(t, testenv.AMQPURLVar))
			require.NoError(t, err)
			u.User = url.UserPassword(u.User.Username(), password)
			return u.String()
		},
	}
	for name, amqpURL := range cases {
		t.Run(name, func(t *testing.T) {
			rawURL := amqpURL(t)
			start := time.Now()
			tr, err := transport.NewTransport(transport.Config{Kind: transport.KindAMQP, AMQPURL: rawURL})
			elapsed := time.Since(start)
			if tr != nil {
				_ = tr.Close()
			}
			require.Error(t, err)
			t.Logf("error after %s: %v", elapsed, err)
			assert.Nil(t, tr)
			assert.Less(t, elapsed, 15*time.Second, "fails fast")
			assert.NotContains(t, err.Error(), password)
			assert.Contains(t, err.Error(), "RabbitMQ")
		})
	}
}

func TestTransportConfig_RejectsBadNamespaces(t *testing.T) {
	for _, ns := range []string{"UPPER", "-lead", "with.dot", "with_underscore", "seventeen-chars-x", "é"} {
		_, err := transport.NewTransport(transport.Config{Kind: transport.KindGoChannel, Namespace: ns})
		assert.ErrorContains(t, err, "PUBSUB_NAMESPACE", ns)
	}
	tr, err := transport.NewTransport(transport.Config{Kind: transport.KindGoChannel, Namespace: "staging-2"})
	require.NoError(t, err)
	assert.Equal(t, "staging-2.events.X", tr.Topic("events.X"))
	assert.NoError(t, tr.Close())
}
