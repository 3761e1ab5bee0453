package domain

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// unlearned is an event type that apply has no case for.
type unlearned struct{}

func (unlearned) EventName() string { return "Unlearned" }
func (unlearned) StreamID() string  { return "u1" }

// Recording an event apply does not know is a bug, and fails loudly
// instead of leaving the user as it was.
func TestUser_RecordingAnEventApplyDoesNotKnowPanics(t *testing.T) {
	u := &User{id: "u1"}
	assert.PanicsWithError(t, "user u1: unknown event domain.unlearned", func() { u.record(unlearned{}) })
}
