//go:build !(linux || darwin || freebsd || openbsd)

package hasher

import (
	"errors"
	"time"
)

// threadCPU reports that this system has no thread CPU clock: the
// hasher's CPU counts nothing there.
func threadCPU() (time.Duration, error) {
	return 0, errors.New("no thread CPU clock on this system")
}
