package testfake

import (
	"strings"
	"time"

	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
)

// VerificationLinks make the verification links of the tests' emails.
var VerificationLinks = event.VerificationLinks{
	URL: "https://onboard.example/verify-email",
	TTL: 48 * time.Hour,
	Key: domain.VerificationKey(strings.Repeat("k", domain.MinVerificationKeyBytes)),
}

// Registered is the UserRegistered event of a user registered at a fixed
// time.
func Registered(userID, name, email string) domain.UserRegistered {
	return domain.UserRegistered{
		UserID:       userID,
		Name:         name,
		Email:        email,
		RegisteredAt: time.Date(2024, 5, 6, 5, 8, 9, 123456000, time.UTC),
	}
}
