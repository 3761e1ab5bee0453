package transport

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
)

func TestHeld_CountsUntilReleasedAndKnowsTheOldest(t *testing.T) {
	var h held
	now := time.Now()
	count, age := h.backlog("H", now)
	assert.Zero(t, count)
	assert.Zero(t, age)

	first := message.NewMessage(uuidV7At(now.Add(-time.Minute)), nil)
	second := message.NewMessage(uuidV7At(now.Add(-time.Second)), nil)
	releaseSecond := h.hold("H", second)
	releaseFirst := h.hold("H", first)
	other := h.hold("Other", message.NewMessage(uuid.Must(uuid.NewV7()).String(), nil))
	defer other()

	count, age = h.backlog("H", now)
	assert.Equal(t, 2, count)
	assert.InDelta(t, 60, age, 0.01)
	releaseFirst()
	count, age = h.backlog("H", now)
	assert.Equal(t, 1, count)
	assert.InDelta(t, 1, age, 0.01)
	releaseSecond()
	count, age = h.backlog("H", now)
	assert.Zero(t, count)
	assert.Zero(t, age)
}

func TestPublishedAt_ReadsAUUIDv7ElseNow(t *testing.T) {
	before := time.Now().Truncate(time.Millisecond)
	v7 := message.NewMessage(uuid.Must(uuid.NewV7()).String(), nil)
	at := publishedAt(v7)
	assert.False(t, at.Before(before))
	assert.False(t, at.After(time.Now()))

	v4 := message.NewMessage(uuid.NewString(), nil)
	assert.WithinDuration(t, time.Now(), publishedAt(v4), time.Second)
	notAUUID := message.NewMessage("welcome-1", nil)
	assert.WithinDuration(t, time.Now(), publishedAt(notAUUID), time.Second)
}

// UUIDV7At lets the package's other tests make messages published at a
// given time.
var UUIDV7At = uuidV7At

// uuidV7At is a UUIDv7 made at the time at.
func uuidV7At(at time.Time) string {
	id := uuid.Must(uuid.NewV7())
	ms := at.UnixMilli()
	for i := range 6 {
		id[i] = byte(ms >> (40 - 8*i))
	}
	return id.String()
}
