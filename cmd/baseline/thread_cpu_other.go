//go:build !(linux || darwin || freebsd || openbsd)

package main

import (
	"errors"
	"time"
)

// threadCPU reports that this system has no thread CPU clock: the hashes'
// CPU counts nothing there.
func threadCPU() (time.Duration, error) {
	return 0, errors.New("no thread CPU clock on this system")
}
