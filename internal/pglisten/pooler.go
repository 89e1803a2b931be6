package pglisten

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gworker/gworker/core"
)

// ProbeTimeout bounds the wait for the probe notification that shows a
// session behind a connection pooler keeps its LISTEN. Through a pooler
// that keeps the session (PgBouncer's session pooling) it arrives within
// milliseconds; through one that does not (transaction pooling) it never
// does.
const ProbeTimeout = 3 * time.Second

// BackendPID returns the server process id that pg_backend_pid() reports
// on c, and whether it differs from the one the connection's start-up
// (BackendKeyData) announced. They differ only when something between the
// client and PostgreSQL answered the start-up itself with a key of its
// own: a connection pooler such as PgBouncer, which may hand each
// transaction to a different server connection.
//
// The query goes through the simple protocol, which needs no prepared
// statement, so it works whatever the pooler's mode.
func BackendPID(ctx context.Context, c *pgconn.PgConn) (pid uint32, pooled bool, err error) {
	results, err := c.Exec(ctx, "select pg_backend_pid()").ReadAll()
	if err != nil {
		return 0, false, err
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != 1 {
		return 0, false, errors.New("select pg_backend_pid() returned no value")
	}
	n, err := strconv.ParseUint(string(results[0].Rows[0][0]), 10, 32)
	if err != nil {
		return 0, false, fmt.Errorf("select pg_backend_pid(): %w", err)
	}
	return uint32(n), uint32(n) != c.PID(), nil
}

// PoolerError is what Open returns (after "PREFIX: listen: ") when its
// connection goes through a connection pooler that does not keep a LISTEN.
// It wraps
// core.ErrNotificationsUnsupported, so that a worker polls and says why
// once, instead of retrying a LISTEN that can never work.
type PoolerError struct {
	// ListenOption is the driver's option that names a direct connection,
	// as the user writes it ("pgxdriver.ListenDSN(url)").
	ListenOption string
}

func (e *PoolerError) Error() string {
	return "LISTEN cannot work on this connection: it goes through a connection pooler that does not keep " +
		"a session between transactions (PgBouncer in transaction pooling mode, say), so no notification would arrive; " +
		"give the driver a direct connection to PostgreSQL for LISTEN with " + e.ListenOption +
		" (gworker run: --listen-connection URL)"
}

func (e *PoolerError) Unwrap() error { return core.ErrNotificationsUnsupported }

// probe checks that conn, which goes through a pooler, keeps a LISTEN: it
// listens on a channel of its own, notifies it from a second connection
// made with the same configuration, and waits up to ProbeTimeout for the
// notification. It returns a *PoolerError when none came.
func (n *Session) probe(ctx context.Context, conn *pgx.Conn) error {
	b := make([]byte, 16)
	_, _ = crand.Read(b)
	channel := "gworker:probe:" + hex.EncodeToString(b[:8])
	token := hex.EncodeToString(b[8:])
	ident := pgx.Identifier{channel}.Sanitize()
	if err := conn.PgConn().Exec(ctx, "LISTEN "+ident).Close(); err != nil {
		return err
	}

	other, err := pgx.ConnectConfig(ctx, n.cfg)
	if err != nil {
		return err
	}
	// Both values are hexadecimal: nothing to escape.
	err = other.PgConn().Exec(ctx, "select pg_notify('"+channel+"', '"+token+"')").Close()
	closeCtx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	other.Close(closeCtx)
	cancel()
	if err != nil {
		return err
	}

	wctx, cancelWait := context.WithTimeout(ctx, ProbeTimeout)
	defer cancelWait()
	for {
		msg, err := conn.WaitForNotification(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if wctx.Err() != nil {
				return &PoolerError{ListenOption: n.listenOption}
			}
			return err
		}
		if msg.Channel == channel && msg.Payload == token {
			return conn.PgConn().Exec(ctx, "UNLISTEN "+ident).Close()
		}
	}
}
