package testfake

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
)

// SessionTTL is how long the fake's sessions say they last; they never
// end but by End, EndOthers or an email change.
const SessionTTL = 24 * time.Hour

// Sessions are the store's sign-in sessions, a command.Sessions.
func (u *Users) Sessions() command.Sessions { return userSessions{u} }

type userSessions struct{ users *Users }

// Start opens a session of the user; with checkedHash, only while the
// user's credential holds it (domain.ErrInvalidCredentials otherwise).
func (s userSessions) Start(_ context.Context, userID string, checkedHash []byte) (command.Session, error) {
	u := s.users
	u.mu.Lock()
	defer u.mu.Unlock()
	if checkedHash != nil && !bytes.Equal(u.hashes[userID], checkedHash) {
		return command.Session{}, domain.ErrInvalidCredentials
	}
	session, _ := s.Open(userID)
	u.sessions[session.Token] = userID
	return session, nil
}

// Open makes a session of the user, not stored.
func (userSessions) Open(userID string) (command.Session, error) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // never fails
	now := time.Now()
	return command.Session{UserID: userID, Token: base64.RawURLEncoding.EncodeToString(raw),
		StartedAt: now, ExpiresAt: now.Add(SessionTTL)}, nil
}

// User returns the user of a live session, or domain.ErrUnauthenticated.
func (s userSessions) User(_ context.Context, token string) (string, error) {
	s.users.mu.Lock()
	defer s.users.mu.Unlock()
	id, ok := s.users.sessions[token]
	if !ok {
		return "", domain.ErrUnauthenticated
	}
	return id, nil
}

// End ends the session of token.
func (s userSessions) End(_ context.Context, token string) error {
	s.users.mu.Lock()
	defer s.users.mu.Unlock()
	delete(s.users.sessions, token)
	return nil
}

// EndOthers ends every session of the user but keep's; keep "" ends all.
func (s userSessions) EndOthers(_ context.Context, userID, keep string) error {
	s.users.mu.Lock()
	defer s.users.mu.Unlock()
	s.users.endSessions(userID, keep)
	return nil
}

// endSessions ends the user's sessions but keep's; u.mu is held.
func (u *Users) endSessions(userID, keep string) {
	for token, owner := range u.sessions {
		if owner == userID && token != keep {
			delete(u.sessions, token)
		}
	}
}
