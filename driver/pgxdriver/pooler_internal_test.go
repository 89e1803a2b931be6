package pgxdriver

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

// Behind a pooler gworker's statements use a mode without named prepared
// statements, unless the configuration chose a mode itself; without one
// they keep the pool's.
func TestPoolerMode(t *testing.T) {
	parse := func(url string) *pgx.ConnConfig {
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	const base = "postgres://u@localhost/db"
	for _, tt := range []struct {
		url    string
		pooled bool
		want   int32
	}{
		{base, false, modeKeep},
		{base, true, int32(pgx.QueryExecModeCacheDescribe)},
		{base + "?description_cache_capacity=0", true, int32(pgx.QueryExecModeExec)},
		{base + "?default_query_exec_mode=simple_protocol", true, modeKeep},
		{base + "?default_query_exec_mode=exec", true, modeKeep},
	} {
		if got := poolerMode(parse(tt.url), tt.pooled); got != tt.want {
			t.Errorf("poolerMode(%s, pooled %v) = %d, want %d", tt.url, tt.pooled, got, tt.want)
		}
	}
}
