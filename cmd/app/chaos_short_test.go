//go:build chaos && chaos_short

package main

import "time"

// The fault scenarios, short, for `make chaos-short`; `make chaos` runs them
// at full size (chaos_full_test.go).
var chaosSize = chaosSizes{
	killLoad:    40,
	kills:       1,
	brokerLoad:  40,
	brokerCut:   3 * time.Second,
	dbLoad:      40,
	dbCut:       3 * time.Second,
	smtpLoad:    40,
	smtpCut:     3 * time.Second,
	replicaLoad: 40,
	inFlight:    40,
	greyLoad:    40,
	greyRefused: 4,
	parallel:    true,
	recovery:    10 * time.Second,
}
