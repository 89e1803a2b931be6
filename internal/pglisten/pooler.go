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

	"github.com/gworker/gworker/internal/poolerror"
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

// sessionCheckTimeout bounds the wait of the listening connection's
// statement while another connection holds a transaction open (see
// sessionMoves).
const sessionCheckTimeout = 2 * time.Second

// probe checks that conn, which goes through a pooler and whose statement
// ran on the server process pid, keeps a LISTEN. First, without LISTEN or
// NOTIFY (see sessionMoves); when that cannot tell, it listens on a
// channel of its own, notifies it from a second connection made with the
// same configuration, and waits up to ProbeTimeout for the notification.
// It returns a *poolerror.Error when the session does not hold.
func (n *Session) probe(ctx context.Context, conn *pgx.Conn, pid uint32) error {
	other, err := pgx.ConnectConfig(ctx, n.cfg)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		other.Close(closeCtx)
		cancel()
	}()
	moved, err := sessionMoves(ctx, conn, other, pid)
	if err != nil {
		return err
	}
	if moved {
		return &poolerror.Error{ListenOption: n.listenOption}
	}

	b := make([]byte, 16)
	_, _ = crand.Read(b)
	channel := "gworker:probe:" + hex.EncodeToString(b[:8])
	token := hex.EncodeToString(b[8:])
	ident := pgx.Identifier{channel}.Sanitize()
	if err := conn.PgConn().Exec(ctx, "LISTEN "+ident).Close(); err != nil {
		return err
	}
	// Both values are hexadecimal: nothing to escape.
	if err := other.PgConn().Exec(ctx, "select pg_notify('"+channel+"', '"+token+"')").Close(); err != nil {
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
				return &poolerror.Error{ListenOption: n.listenOption}
			}
			return err
		}
		if msg.Channel == channel && msg.Payload == token {
			return conn.PgConn().Exec(ctx, "UNLISTEN "+ident).Close()
		}
	}
}

// sessionMoves tells a transaction pooler without sending a notification,
// which through such a pooler would reach whichever client has the server
// connection that kept the LISTEN, and might upset it (bun's pgdriver
// fails on a notification it did not ask for). While other holds a
// transaction open, conn runs a statement again. A pooler that keeps the
// session runs it on the same server process, pid. A transaction pooler
// that hands out the server connection used last first, as PgBouncer does,
// gave that one (conn's) to other, so conn's statement runs on another:
// moved. When it runs on the same one all the same, the answer is
// inconclusive (false), and the caller checks with a notification.
func sessionMoves(ctx context.Context, conn, other *pgx.Conn, pid uint32) (moved bool, err error) {
	if err := other.PgConn().Exec(ctx, "begin").Close(); err != nil {
		return false, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		if rerr := other.PgConn().Exec(rctx, "rollback").Close(); rerr != nil && err == nil {
			err = rerr
		}
		cancel()
	}()
	if _, _, err := BackendPID(ctx, other.PgConn()); err != nil {
		return false, err
	}
	qctx, cancel := context.WithTimeout(ctx, sessionCheckTimeout)
	defer cancel()
	now, _, err := BackendPID(qctx, conn.PgConn())
	if err != nil {
		if ctx.Err() == nil && qctx.Err() != nil {
			// A session pooler never makes conn wait for other; a
			// transaction pooler with every server connection taken does.
			return false, errors.New("the pooler made the listening connection wait for a server connection " +
				"while another client held one: it does not keep a session (transaction pooling?), or it is overloaded")
		}
		return false, err
	}
	return now != pid, nil
}
