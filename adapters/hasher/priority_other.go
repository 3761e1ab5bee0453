//go:build !linux

package hasher

// lowerThreadPriority does nothing here: the hash runs at the usual
// priority.
func lowerThreadPriority() {}
