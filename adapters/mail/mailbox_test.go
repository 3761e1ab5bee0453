package mail_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	netmail "net/mail"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/app/event"
)

// The development mailbox keeps an email as a file of its own, its link
// whole, so that a developer can verify an address with nothing else.
func TestMailboxMailer_WritesEachEmailAsAFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "mail")
	var logs bytes.Buffer
	m, err := mail.NewMailboxMailer(dir, "no-reply@onboard.test", slog.New(slog.NewJSONHandler(&logs, nil)))
	require.NoError(t, err)
	link := "http://localhost:8080/verify-email?user=u1&token=s3cr3tT0ken_-x"
	require.NoError(t, m.Send(context.Background(), event.Mail{ID: "welcome.u1", To: "ada@example.com",
		Subject: "Welcome", Body: "open " + link + " now"}))

	info, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), info.Mode().Perm(), "the folder is its owner's alone")
	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, files, 1, "one file, no temporary one left")
	assert.Equal(t, "welcome.u1.eml", files[0].Name())
	path := filepath.Join(dir, files[0].Name())
	info, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	require.NoError(t, err)
	assert.Equal(t, "<ada@example.com>", msg.Header.Get("To"))
	assert.Equal(t, "<welcome.u1@onboard.test>", msg.Header.Get("Message-Id"))
	assert.Equal(t, "Welcome", msg.Header.Get("Subject"))
	body, err := io.ReadAll(msg.Body)
	require.NoError(t, err)
	assert.Contains(t, string(body), link, "the link whole")

	assert.Contains(t, logs.String(), "email written to the development mailbox")
	assert.Contains(t, logs.String(), `"file":"`+path+`"`)
	assert.NotContains(t, logs.String(), "ada@example.com", "no address in the log")
	assert.NotContains(t, logs.String(), "s3cr3tT0ken", "no token in the log")
}

func TestMailboxMailer_TheSameEmailAgainReplacesItsFile(t *testing.T) {
	dir := t.TempDir()
	m, err := mail.NewMailboxMailer(dir, "no-reply@onboard.test", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	for _, body := range []string{"first", "second"} {
		require.NoError(t, m.Send(context.Background(), event.Mail{ID: "../welcome/u1", To: "ada@example.com", Body: body}))
	}
	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Equal(t, ".._welcome_u1.eml", files[0].Name(), "an ID names a file inside the folder alone")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.Error(t, m.Send(ctx, event.Mail{ID: "late", To: "ada@example.com"}))
	require.Error(t, m.Send(context.Background(), event.Mail{ID: "bad", To: "not an address"}))
	files, err = os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, files, 1, "nothing written for an email not sent")
}

func TestNewMailboxMailer_RefusesABadSender(t *testing.T) {
	_, err := mail.NewMailboxMailer(t.TempDir(), "not an address", slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "MAIL_FROM")
}
