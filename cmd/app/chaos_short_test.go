//go:build chaos && chaos_short

package main

import "time"

// The fault scenarios, short, for `make chaos-short`; `make chaos` runs them
// at full size (chaos_full_test.go).
var chaosSize = chaosSizes{
	killLoad:    20,
	kills:       1,
	brokerLoad:  20,
	brokerCut:   3 * time.Second,
	dbLoad:      20,
	dbCut:       3 * time.Second,
	smtpLoad:    20,
	smtpCut:     3 * time.Second,
	replicaLoad: 20,
	inFlight:    40,
	greyLoad:    20,
	greyRefused: 4,
	refuseLoad:  40,
	refused:     5,
	parallel:    true,
	recovery:    10 * time.Second,
}
