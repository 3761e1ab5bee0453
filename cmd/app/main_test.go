package main

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The service hashes one password per CPU and runs twice as many Go
// processors, so that answers needing no hash never wait behind one.
func TestSpareProcessors(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })

	assert.Equal(t, before, spareProcessors(), "one hash per CPU")
	assert.Equal(t, 2*before, runtime.GOMAXPROCS(0))
}
