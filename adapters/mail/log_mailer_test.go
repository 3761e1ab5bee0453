package mail_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/app/event"
)

// The log mailer keeps no verification token: a log is no place for one.
func TestLogMailer_RedactsLinkTokens(t *testing.T) {
	var out bytes.Buffer
	m := mail.LogMailer{From: "no-reply@onboard.test", Logger: slog.New(slog.NewJSONHandler(&out, nil))}
	require.NoError(t, m.Send(context.Background(), event.Mail{ID: "welcome.u1", To: "ada@example.com",
		Subject: "Welcome", Body: "open http://localhost:8080/verify-email?token=s3cr3tT0ken_-x&user=u1 now"}))
	assert.NotContains(t, out.String(), "s3cr3tT0ken")
	assert.Contains(t, out.String(), "verify-email?token=REDACTED&user=u1 now")
	assert.NotContains(t, out.String(), "ada@example.com", "no address in the log")
	assert.Contains(t, out.String(), `"to":"a***@example.com"`)
	assert.Contains(t, out.String(), "email written to the log, not sent")
}

func TestMaskAddress(t *testing.T) {
	for address, masked := range map[string]string{
		"ada@example.com": "a***@example.com", "a@b.example": "a***@b.example", "not an address": "***", "@x.y": "***",
	} {
		assert.Equal(t, masked, mail.MaskAddress(address), address)
	}
}
