package domain

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/trustelem/zxcvbn/frequency"
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

// zxcvbn's frequency lists are gone once the package started, and its
// dictionaries, ranked from them before, still find a common password.
func TestZxcvbnFrequencyListsReleased(t *testing.T) {
	assert.Nil(t, frequency.FrequencyLists)
	assert.Less(t, passwordGuesses("sunshine1", nil), float64(MinPasswordGuesses))
}
