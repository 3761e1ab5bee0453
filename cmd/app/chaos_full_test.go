//go:build chaos && !chaos_short

package main

import "time"

// The fault scenarios at the sizes of the Reliability issue: `make chaos`.
var chaosSize = chaosSizes{
	killLoad:    500,
	kills:       3,
	brokerLoad:  500,
	brokerCut:   10 * time.Second,
	dbLoad:      500,
	dbCut:       10 * time.Second,
	smtpLoad:    500,
	smtpCut:     30 * time.Second,
	replicaLoad: 500,
	inFlight:    200,
	greyLoad:    200,
	greyRefused: 10,
	refuseLoad:  200,
	refused:     10,
	parallel:    false,
	recovery:    5 * time.Second,
}
