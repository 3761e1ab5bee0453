package domain

import "slices"

// DefaultLocale is the language of a user who chose none.
const DefaultLocale = "en"

// Locales are the languages onboard writes its emails in.
var Locales = []string{"de", "en"}

const (
	fieldLocale     = "locale"
	slugUnsupported = "unsupported"
	slugUnchanged   = "unchanged"
)

// parseLocale accepts one of Locales; empty is DefaultLocale.
func parseLocale(raw string, v validation) string {
	if raw == "" {
		return DefaultLocale
	}
	if !slices.Contains(Locales, raw) {
		v.add(fieldLocale, slugUnsupported)
	}
	return raw
}
