package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// TestE2E_ResetPasswordInBrowser: the page of a password reset email's
// link, in a headless Chromium. It shows the form, with no script, under
// the service's Content-Security-Policy; a weak password brings the form
// back saying why; a good one changes the password, and the page says so;
// sign-in then takes the new password and refuses the old; the same link,
// opened and sent again, is not valid.
func TestE2E_ResetPasswordInBrowser(t *testing.T) {
	t.Parallel()
	browser := e2e.Browser(t)
	for _, tc := range []struct {
		name     string
		database func(testing.TB) string
	}{
		{"sqlite", nil},
		{"postgres", testenv.PostgresDatabase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := e2e.Deploy(t, e2e.Config{PubSub: transport.KindSQL, Database: tc.database, SMTP: true,
				Vars: map[string]string{"TRUSTED_PROXIES": "127.0.0.1"}})
			proc, api := d.Serve(t)
			run := e2e.RunID()
			ada := api.MustRegister(t, e2e.User{Name: "Ada Lovelace", Email: "ada." + run + "@example.com",
				Password: "correct horse battery " + run})
			body, err := json.Marshal(map[string]string{"email": ada.Email})
			require.NoError(t, err)
			r, err := api.Post("/password-resets", "application/json", bytes.NewReader(body), from("198.51.100.20"))
			require.NoError(t, err)
			require.Equal(t, http.StatusAccepted, r.Status, r.String())

			link := pageLinkIn(t, d, ada.Email, "reset the password", "/reset-password?")
			require.Equal(t, "/reset-password", link.Path)
			require.Equal(t, ada.ID, link.Query().Get("user"))
			// The link names RESET_URL's host; the page is this process's.
			page := api.Base + link.Path + "?" + link.RawQuery
			served, err := api.Get(link.Path + "?" + link.RawQuery)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, served.Status, served.String())
			policy := served.Header.Get("Content-Security-Policy")
			require.Contains(t, policy, "default-src 'none'", "no script, no other source")

			tab := e2e.NewTab(t, browser)
			opened := openPage(t, tab, page)
			assert.Equal(t, policy, headerOf(opened, "Content-Security-Policy"), "the browser got the service's policy")
			assertResetForm(t, tab, ada.ID, link.Query().Get("token"))

			weak := submitPassword(t, tab, "12345678")
			assert.Equal(t, http.StatusUnprocessableEntity, int(weak.Status))
			require.NoError(t, chromedp.Do(tab, chromedp.WaitVisible(chromedp.ID("problem"))))
			assert.Equal(t, "This password is too easy to guess: add words or characters.", textOf(t, tab, chromedp.ID("problem")))
			assertResetForm(t, tab, ada.ID, link.Query().Get("token"))

			newPassword := "a horse of a new colour " + run
			changed := submitPassword(t, tab, newPassword)
			assert.Equal(t, http.StatusOK, int(changed.Status))
			require.NoError(t, chromedp.Do(tab, chromedp.WaitVisible(chromedp.ID("outcome"))))
			assert.Equal(t, "Your password is changed", textOf(t, tab, chromedp.ID("outcome")))

			signedIn := signIn(t, api, "198.51.100.20", ada.Email, newPassword)
			assert.Equal(t, http.StatusCreated, signedIn.Status, "the new password: %s", signedIn)
			old := signIn(t, api, "198.51.100.20", ada.Email, ada.Password)
			assert.Equal(t, http.StatusUnauthorized, old.Status, "the old password: %s", old)

			again := openPage(t, tab, page)
			assert.Equal(t, policy, headerOf(again, "Content-Security-Policy"))
			assertResetForm(t, tab, ada.ID, link.Query().Get("token"))
			spent := submitPassword(t, tab, "yet another horse battery "+run)
			assert.Equal(t, http.StatusUnprocessableEntity, int(spent.Status))
			require.NoError(t, chromedp.Do(tab, chromedp.WaitVisible(chromedp.ID("outcome"))))
			assert.Equal(t, "This link is not valid", textOf(t, tab, chromedp.ID("outcome")))
			assert.Equal(t, http.StatusUnauthorized,
				signIn(t, api, "198.51.100.20", ada.Email, "yet another horse battery "+run).Status,
				"a spent link sets nothing")
			proc.Stop(t)
		})
	}
}

// openPage loads page in the tab and returns the answer to its request.
func openPage(t *testing.T, tab context.Context, page string) *network.Response {
	t.Helper()
	resp, err := chromedp.Run(tab, chromedp.NavigateResponse(page))
	require.NoError(t, err, "open the reset page")
	require.Equal(t, http.StatusOK, int(resp.Status), "open the reset page")
	return resp
}

// assertResetForm checks the page in the tab: the reset form, posting the
// user and token of the link, and no script at all.
func assertResetForm(t *testing.T, tab context.Context, user, token string) {
	t.Helper()
	require.NoError(t, chromedp.Do(tab, chromedp.WaitVisible(chromedp.ID("password"))))
	for _, check := range []struct {
		sel         chromedp.CSS
		name, value string
	}{
		{"form", "method", "post"},
		{"form", "action", "/reset-password"},
		{`form input[type=hidden][name=user]`, "value", user},
		{`form input[type=hidden][name=token]`, "value", token},
		{"form input#password", "type", "password"},
		{"form input#password", "name", "password"},
		{"form input#password", "autocomplete", "new-password"},
		{`form button[type=submit]`, "type", "submit"},
	} {
		got, err := chromedp.Run(tab, chromedp.AttributeValue(check.sel, check.name))
		require.NoError(t, err, "%s", check.sel)
		assert.Equal(t, check.value, got.Value, "%s %s", check.sel, check.name)
	}
	scripts, err := chromedp.Run(tab, chromedp.Nodes(chromedp.CSSAll("script"), chromedp.AtLeast(0)))
	require.NoError(t, err)
	assert.Equal(t, 0, len(scripts), "script elements in the page")
}

// submitPassword types password into the form of the tab, sends it, and
// returns the answer, once its page is loaded.
func submitPassword(t *testing.T, tab context.Context, password string) *network.Response {
	t.Helper()
	require.NoError(t, chromedp.Do(tab, chromedp.SendKeys(chromedp.ID("password"), password)))
	resp, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
	require.NoError(t, err, "submit the form")
	return resp
}

func textOf(t *testing.T, tab context.Context, sel chromedp.ID) string {
	t.Helper()
	got, err := chromedp.Run(tab, chromedp.Text(sel))
	require.NoError(t, err, "the text of #%s", sel)
	return got
}

// headerOf is the value of a header of a response the browser got, whatever
// the case of its name; "" when absent.
func headerOf(resp *network.Response, name string) string {
	for k, v := range resp.Headers {
		if http.CanonicalHeaderKey(k) == http.CanonicalHeaderKey(name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}
