//go:build e2e_fast_hash

package service

// MinBcryptCost is lowered to bcrypt's own minimum in the binary that the
// end-to-end tests build (tag e2e_fast_hash): their thousands of
// registrations would otherwise spend most of the run hashing. A release
// build never carries the tag.
const MinBcryptCost = 4
