package query

import "context"

// SessionUsers tells whose a session token is.
type SessionUsers interface {
	// User returns the user of a live session, or domain.ErrUnauthenticated.
	User(ctx context.Context, token string) (string, error)
}

// SessionUserHandler authenticates a request by its session token.
type SessionUserHandler struct{ sessions SessionUsers }

// NewSessionUserHandler returns the handler.
func NewSessionUserHandler(sessions SessionUsers) SessionUserHandler {
	return SessionUserHandler{sessions: sessions}
}

// Handle returns the id of the session's user, or domain.ErrUnauthenticated.
func (h SessionUserHandler) Handle(ctx context.Context, token string) (string, error) {
	return h.sessions.User(ctx, token)
}
