package service

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testsmtp"
)

// On redis, the start warns when Redis keeps no append-only file, and says
// so at INFO when it cannot read the setting (CONFIG disabled, as on many
// managed services); it starts in either case.
func TestService_WarnsWhenRedisWouldLoseItsMessages(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		redisArgs []string
		want      string // the start's line about persistence; empty: none
	}{
		{"no append-only file", []string{"--appendonly", "no"}, `"level":"WARN","msg":"Redis keeps no append-only file`},
		{"append-only file", []string{"--appendonly", "yes"}, ""},
		{"CONFIG disabled", []string{"--rename-command", "CONFIG", ""},
			`"level":"INFO","msg":"cannot read the broker's persistence settings`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			smtp := testsmtp.Start(t)
			cfg := tracedConfig(t, transport.KindRedis, testenv.SQLiteDatabase(t), "", smtp)
			cfg.RedisURL = testenv.StartRedis(t, tt.redisArgs...).URL
			s := startTracedService(t, cfg, smtp)
			s.stop()
			logs := s.logs.String()
			if tt.want != "" {
				assert.Contains(t, logs, tt.want)
			}
			for _, other := range []string{"Redis keeps no append-only file", "persistence settings"} {
				if !strings.Contains(tt.want, other) {
					assert.NotContains(t, logs, other)
				}
			}
		})
	}
}
