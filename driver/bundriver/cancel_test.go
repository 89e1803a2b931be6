package bundriver

import (
	"database/sql"
	"testing"

	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/gworker/gworker/internal/pgtest"
)

// pgdriver keeps the backend's process id and secret key unexported; the
// cancel request reads them with reflect. This fails if pgdriver renames
// them, rather than cancellation silently degrading to cutting the
// connection.
func TestTargetFindsTheBackendKey(t *testing.T) {
	t.Parallel()
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(pgtest.URL(t))))
	defer db.Close()
	c, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tg := targetOf(c)
	var pid int64
	if err := c.QueryRowContext(t.Context(), `select pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if tg == nil || !tg.hasKey || tg.pid != pid || tg.key == 0 {
		t.Fatalf("target = %+v, backend pid %d", tg, pid)
	}
}
