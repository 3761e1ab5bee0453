//go:build !e2e_fast_hash

package service

// MinBcryptCost is the lowest BCRYPT_COST the service accepts.
const MinBcryptCost = 10
