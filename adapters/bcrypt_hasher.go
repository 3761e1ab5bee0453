package adapters

import "golang.org/x/crypto/bcrypt"

// BcryptHasher hashes passwords with bcrypt at a fixed cost.
type BcryptHasher struct{ Cost int }

// Matches tells whether password is the one hash was made from.
func (h BcryptHasher) Matches(hash []byte, password string) bool {
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
}

// Hash returns the bcrypt hash of password.
func (h BcryptHasher) Hash(password string) ([]byte, error) {
	return bcrypt.GenerateFromPassword([]byte(password), h.Cost)
}
