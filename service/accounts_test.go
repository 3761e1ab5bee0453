package service

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/testenv"
)

// An attacker with an account of their own moves its address back and
// forth between a victim's and their own: the victim gets no more emails
// than the budget allows, whatever the number of changes.
func TestService_AddressChangesAreNoMailCannon(t *testing.T) {
	t.Parallel()
	dbURL := testenv.SQLiteDatabase(t)
	s := startServiceOn(t, testenv.OpenDB(t, dbURL), dbURL, func(cfg *Config) {
		var err error
		cfg.EmailBudget, err = ParseEmailBudget(DefaultEmailBudget)
		require.NoError(t, err)
	})
	status, _, body := s.post(jsonBody(okName, `"eve@example.com"`, okPassword), "")
	require.Equal(t, http.StatusCreated, status, "%s", body)
	eve, auth := decodeUser(t, body).ID, sessionHeader(t, body)

	const victim = "victim@example.com"
	statuses := map[int]int{}
	for i := range 20 {
		to := []string{victim, "eve@example.com"}[i%2]
		resp, body := s.call(http.MethodPut, "/users/"+eve+"/email", fmt.Sprintf(`{"email":%q,"password":%s}`, to, okPassword),
			map[string]string{"If-Match": "*", "Authorization": auth["Authorization"]})
		statuses[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			assert.NotEmpty(t, resp.Header.Get("Retry-After"), "%s", body)
		}
	}
	// 422 unchanged: a refused change left the address where the next one
	// would move it.
	assert.Equal(t, 20, statuses[http.StatusOK]+statuses[http.StatusTooManyRequests]+statuses[http.StatusUnprocessableEntity],
		"%v", statuses)
	require.Positive(t, statuses[http.StatusTooManyRequests], "%v", statuses)

	// The welcome, then a link and a notice per change that passed.
	sent := 1 + 2*statuses[http.StatusOK]
	require.Eventually(t, func() bool { return s.mailer.Count() == sent }, serviceWait, 10*time.Millisecond)
	assert.LessOrEqual(t, len(s.mailer.To(victim)), 3, "the victim's emails in an hour")
	assert.LessOrEqual(t, len(s.mailer.To("eve@example.com")), 3, "and the attacker's own")
}
