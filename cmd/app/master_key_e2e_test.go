package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// TestE2E_RotateTheMasterKey: a deployment on MASTER_KEY moves to a new
// master key as docs/operations.md says. It restarts with MASTER_KEYS
// listing the new key then the old, `onboard keys rotate` re-wraps every
// key while it serves, printing a line per batch; the new key alone then
// serves every user as before, and a second rotation finds nothing; a user
// erased before the rotation stays unreadable. No output holds a key.
func TestE2E_RotateTheMasterKey(t *testing.T) {
	t.Parallel()
	for _, backend := range testenv.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			t.Parallel()
			oldKey, newKey := testenv.NewMasterKey(), testenv.NewMasterKey()
			d := e2e.Deploy(t, e2e.Config{PubSub: transport.KindSQL, Database: backend.URL,
				Vars: map[string]string{"MASTER_KEY": oldKey, "ADMIN_TOKEN": erasureAdminToken}})
			first, api := d.Serve(t)
			users := newUsers("rotate", e2e.RunID(), 4)
			for i := range users[:3] {
				users[i] = api.MustRegister(t, users[i])
			}
			erased := api.MustRegister(t, newUsers("rotate-erased", e2e.RunID(), 1)[0])
			r, err := api.Request(http.MethodDelete, "/users/"+erased.ID, "", nil, admin)
			require.NoError(t, err)
			require.Equal(t, http.StatusNoContent, r.Status, r.String())
			first.Stop(t)

			d.Vars["MASTER_KEY"], d.Vars["MASTER_KEYS"] = "", "new:"+newKey+",old:"+oldKey
			second, api := d.Serve(t)
			users[3] = api.MustRegister(t, users[3]) // wrapped under the new key
			out := d.Operator(t, "keys", "rotate")
			t.Log(out)
			assert.Regexp(t, `(?m)^keys rotate: (\d+) of (\d+) keys re-wrapped under master key new \(user_keys\), \S+ elapsed$`,
				out)
			progress := regexp.MustCompile(`(?m)^keys rotate: (\d+) of (\d+) keys`).FindAllStringSubmatch(out, -1)
			require.NotEmpty(t, progress)
			last := progress[len(progress)-1]
			assert.Equal(t, last[1], last[2], "the last batch finishes the total")
			assert.Regexp(t, `(?m)^re-wrapped \d+ server keys and 3 users' keys from master key old under new in \S+$`, out)
			assert.Contains(t, out, "no stored key needs master key old any more")
			again := d.Operator(t, "keys", "rotate")
			assert.True(t, strings.HasPrefix(again, "nothing to re-wrap: every key is wrapped under master key new\n"), again)
			second.Stop(t)

			d.Vars["MASTER_KEYS"] = "new:" + newKey
			third, api := d.Serve(t)
			for _, u := range users {
				got := jsonOf(t, api.MustGet(t, "/users/"+u.ID))
				assert.Equal(t, u.Email, got["email"])
				assert.Equal(t, u.Name, got["name"])
				assert.Contains(t, string(api.MustGet(t, "/users/"+u.ID+"/export").Body), u.Email, "its events open")
			}
			for _, path := range []string{"/users/" + erased.ID, "/users/" + erased.ID + "/export"} {
				r, err := api.Request(http.MethodGet, path, "", nil, admin)
				require.NoError(t, err)
				assert.Equal(t, http.StatusGone, r.Status, "erased before the rotation: %s", r)
			}
			assert.Zero(t, d.DB.Count(t, d.DB.Rebind(`SELECT count(*) FROM user_keys WHERE user_id = ?`), erased.ID),
				"no key was made again for the erased user")
			third.Stop(t)
			all := out + again
			for _, p := range d.Processes() {
				all += p.Stdout.String() + p.Stderr.String()
			}
			for _, key := range []string{oldKey, newKey} {
				assert.NotContains(t, all, key, "never a master key")
				assert.NotContains(t, all, key[:16], "never a master key")
			}
		})
	}
}
