package domain_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/domain"
)

// emailOf builds a syntactically valid address of exactly n bytes (n >= 71).
func emailOf(n int) string {
	local := strings.Repeat("l", 64)
	const tld = ".com"
	rest := n - len(local) - len("@") - len(tld)
	var labels []string
	for rest > 0 {
		size := min(rest, 63)
		if rest-size == 1 { // a label of zero characters would follow
			size--
		}
		labels = append(labels, strings.Repeat("d", size))
		rest -= size + 1 // the label and the dot after it
	}
	return local + "@" + strings.Join(labels, ".") + tld
}

func TestEmailOfHelper(t *testing.T) {
	for _, n := range []int{71, 200, 254, 255} {
		assert.Len(t, emailOf(n), n)
	}
}

func TestNewUser_Email(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		wantKey  string // when valid
		wantSlug string // when invalid
	}{
		{name: "plain", input: "ada@example.com", wantKey: "ada@example.com"},
		{name: "mixed case kept as typed", input: "Ada.Lovelace@Example.COM", wantKey: "ada.lovelace@example.com"},
		{name: "plus tag", input: "ada+signup@example.co.uk", wantKey: "ada+signup@example.co.uk"},
		{name: "254 bytes", input: emailOf(254), wantKey: emailOf(254)},
		{name: "255 bytes", input: emailOf(255), wantSlug: "too-long"},
		{name: "1000 bytes", input: strings.Repeat("a", 990) + "@example.com", wantSlug: "too-long"},
		{name: "empty", input: "", wantSlug: "required"},
		{name: "display name", input: "Ada <ada@example.com>", wantSlug: "invalid-format"},
		{name: "quoted display name", input: `"Ada Lovelace" <ada@example.com>`, wantSlug: "invalid-format"},
		{name: "angle brackets only", input: "<ada@example.com>", wantSlug: "invalid-format"},
		{name: "comment", input: "ada@example.com (Ada)", wantSlug: "invalid-format"},
		{name: "two addresses", input: "ada@example.com, eve@example.com", wantSlug: "invalid-format"},
		{name: "two addresses with semicolon", input: "ada@example.com;eve@example.com", wantSlug: "invalid-format"},
		{name: "leading space", input: " ada@example.com", wantSlug: "invalid-format"},
		{name: "trailing space", input: "ada@example.com ", wantSlug: "invalid-format"},
		{name: "spaces only", input: "   ", wantSlug: "invalid-format"},
		{name: "space inside", input: "ada lovelace@example.com", wantSlug: "invalid-format"},
		{name: "quoted local part with space", input: `"ada lovelace"@example.com`, wantSlug: "invalid-format"},
		{name: "missing @", input: "ada.example.com", wantSlug: "invalid-format"},
		{name: "two @", input: "ada@@example.com", wantSlug: "invalid-format"},
		{name: "missing local part", input: "@example.com", wantSlug: "invalid-format"},
		{name: "missing domain", input: "ada@", wantSlug: "invalid-format"},
		{name: "CRLF header injection", input: "ada@example.com\r\nBcc: eve@example.com", wantSlug: "invalid-format"},
		{name: "LF inside", input: "ada\n@example.com", wantSlug: "invalid-format"},
		{name: "CR inside", input: "ada@exa\rmple.com", wantSlug: "invalid-format"},
		{name: "trailing NUL", input: "ada@example.com\x00", wantSlug: "invalid-format"},
		{name: "non-ASCII local part", input: "adä@example.com", wantSlug: "invalid-format"},
		{name: "non-ASCII domain", input: "ada@exämple.com", wantSlug: "invalid-format"},
		{name: "Cyrillic look-alike", input: "аda@example.com", wantSlug: "invalid-format"},
		{name: "invalid UTF-8", input: "ada\xff@example.com", wantSlug: "invalid-format"},
		// RFC 5321 sizes: local part 64 bytes, domain label 63 bytes.
		{name: "64-byte local part", input: strings.Repeat("l", 64) + "@example.com", wantKey: strings.Repeat("l", 64) + "@example.com"},
		{name: "65-byte local part", input: strings.Repeat("l", 65) + "@example.com", wantSlug: "too-long"},
		{name: "63-byte label", input: "ada@" + strings.Repeat("d", 63) + ".com", wantKey: "ada@" + strings.Repeat("d", 63) + ".com"},
		{name: "64-byte label", input: "ada@" + strings.Repeat("d", 64) + ".com", wantSlug: "too-long"},
		{name: "64-byte top-level label", input: "ada@example." + strings.Repeat("d", 64), wantSlug: "too-long"},
		// The domain is a host name: letters, digits and hyphens, at least two labels.
		{name: "subdomains", input: "ada@mail.eu.example.co.uk", wantKey: "ada@mail.eu.example.co.uk"},
		{name: "hyphen inside a label", input: "ada@ex-ample.com", wantKey: "ada@ex-ample.com"},
		{name: "digits in a label", input: "ada@123.example.com", wantKey: "ada@123.example.com"},
		{name: "punycode label", input: "ada@xn--bcher-kva.example", wantKey: "ada@xn--bcher-kva.example"},
		{name: "label starts with a hyphen", input: "ada@-example.com", wantSlug: "invalid-format"},
		{name: "label ends with a hyphen", input: "ada@example-.com", wantSlug: "invalid-format"},
		{name: "top-level label starts with a hyphen", input: "ada@example.-com", wantSlug: "invalid-format"},
		{name: "underscore in the domain", input: "ada@exa_mple.com", wantSlug: "invalid-format"},
		{name: "empty label", input: "ada@example..com", wantSlug: "invalid-format"},
		{name: "leading dot in the domain", input: "ada@.example.com", wantSlug: "invalid-format"},
		{name: "trailing dot in the domain", input: "ada@example.com.", wantSlug: "invalid-format"},
		{name: "localhost", input: "ada@localhost", wantSlug: "invalid-format"},
		{name: "single-label domain", input: "ada@example", wantSlug: "invalid-format"},
		{name: "IPv4 literal", input: "ada@[127.0.0.1]", wantSlug: "invalid-format"},
		{name: "IPv6 literal", input: "ada@[IPv6:::1]", wantSlug: "invalid-format"},
		{name: "bare IPv4 address", input: "ada@127.0.0.1", wantSlug: "invalid-format"},
		{name: "all-numeric top-level label", input: "ada@example.123", wantSlug: "invalid-format"},
		// Local parts that route, quote or encode.
		{name: "apostrophe in the local part", input: "o'neil@example.com", wantKey: "o'neil@example.com"},
		{name: "percent routing", input: "a%b@c.com", wantSlug: "invalid-format"},
		{name: "percent relay through another host", input: "ada%evil.example@example.com", wantSlug: "invalid-format"},
		{name: "bang path", input: "evil.example!ada@example.com", wantSlug: "invalid-format"},
		{name: "quoted local part", input: `"ada"@example.com`, wantSlug: "invalid-format"},
		{name: "quoted local part with @", input: `"ada@evil.example"@example.com`, wantSlug: "invalid-format"},
		{name: "RFC 2047 encoded word", input: "=?utf-8?q?ada?=@x.com", wantSlug: "invalid-format"},
		{name: "RFC 2047 encoded word in base64", input: "=?utf-8?b?YWRh?=@example.com", wantSlug: "invalid-format"},
		{name: "RFC 2047 encoded word inside", input: "ada.=?iso-8859-1?q?=E9?=@example.com", wantSlug: "invalid-format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, err := domain.NewUser(validID, validName, tt.input, validPassword, "", registeredAt)
			if tt.wantSlug != "" {
				require.Error(t, err)
				assert.Nil(t, user)
				assert.Equal(t, map[string]string{"email": tt.wantSlug}, fieldErrors(t, err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.input, user.Email().String(), "kept as typed")
			assert.Equal(t, tt.wantKey, user.Email().Key())
			registered := user.PendingEvents()[0].(domain.UserRegistered)
			assert.Equal(t, tt.input, registered.Email)
		})
	}
}

func TestEmailKeyIsCaseInsensitive(t *testing.T) {
	a, err := domain.NewUser(validID, validName, "ADA@EXAMPLE.COM", validPassword, "", registeredAt)
	require.NoError(t, err)
	b, err := domain.NewUser(validID, validName, "ada@Example.com", validPassword, "", registeredAt)
	require.NoError(t, err)
	assert.NotEqual(t, a.Email().String(), b.Email().String())
	assert.Equal(t, a.Email().Key(), b.Email().Key())
}
