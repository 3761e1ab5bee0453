package main

import "github.com/onboard/onboard/service"

// The defaults e2eEnv names, now the service package's.
const (
	DefaultRetryMaxAge = service.DefaultRetryMaxAge
	DefaultRetryDelay  = service.DefaultRetryDelay
)
