//go:build nonats || noredis || nogooglecloud || nosqs

package transport

import "fmt"

// leftOut is NewTransport's answer, and the poison queue's and the
// teardown's, for a transport a build tag left out of the binary (nonats,
// noredis, nogooglecloud, nosqs: see the Makefile's TRANSPORTS).
func leftOut(kind string) error {
	return fmt.Errorf("PUBSUB=%s: this build leaves the %s transport out (built with -tags no%s); "+
		"build it with `make build`, which keeps every transport", kind, kind, kind)
}
