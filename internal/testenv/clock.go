package testenv

import "github.com/onboard/onboard/internal/testfake"

// Clock is testfake.Clock, under the name the integration tests know.
type Clock = testfake.Clock

// NewClock is testfake.NewClock.
func NewClock() *Clock { return testfake.NewClock() }
