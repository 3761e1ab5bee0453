package testfake

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
)

// Hasher is a command.PasswordHasher that costs nothing: a salted SHA-256,
// "fake$<salt>$<sum>", so that two hashes of one password differ, as
// bcrypt's do. The tests of what a handler does with a hash need no
// bcrypt; the bcrypt hasher has tests of its own.
type Hasher struct {
	hashes, mismatches atomic.Int32
}

// Hash returns a new salted hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.hashes.Add(1)
	salt := make([]byte, 8)
	_, _ = rand.Read(salt) // never fails
	return fakeHash(hex.EncodeToString(salt), password), nil
}

// Matches tells whether hash, of Hash, was made from password.
func (h *Hasher) Matches(ctx context.Context, hash []byte, password string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	parts := strings.Split(string(hash), "$")
	if len(parts) != 3 || parts[0] != "fake" {
		return false, errors.New("testfake: not a hash of testfake.Hasher")
	}
	same := bytes.Equal(hash, fakeHash(parts[1], password))
	if !same {
		h.mismatches.Add(1)
	}
	return same, nil
}

func fakeHash(salt, password string) []byte {
	sum := sha256.Sum256([]byte(salt + "$" + password))
	return []byte("fake$" + salt + "$" + hex.EncodeToString(sum[:]))
}

// Hashes is how many hashes were made.
func (h *Hasher) Hashes() int { return int(h.hashes.Load()) }

// Mismatches is how many comparisons found a wrong password.
func (h *Hasher) Mismatches() int { return int(h.mismatches.Load()) }
