package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gworker/gworker/driver/pgxdriver"
)

// Backoff between attempts to connect at start: from connectRetryMin,
// doubling up to connectRetryMax, each wait drawn from its upper half.
const (
	connectRetryMin = 200 * time.Millisecond
	connectRetryMax = 5 * time.Second
)

// openWaiting connects as open does, but waits out the failures that end
// by themselves: no server answering yet (it is starting, restarting or
// failing over), a server that says it cannot take connections now
// (SQLSTATE 57P03) or has too many (53300). It logs one warning when such
// an outage starts (and again if what is wrong changes) and one line when
// it is over. Anything else fails at once, as open does: a bad URL, a
// failed authentication, a database that does not exist. SIGINT or
// SIGTERM while it waits gives up, returning the last error.
func (c *commonFlags) openWaiting(ctx context.Context, e *env, log *slog.Logger, opts ...pgxdriver.Option) (*pgxdriver.Driver, error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var (
		since    time.Time
		problem  string
		failures int
		delay    time.Duration
	)
	for {
		db, err := c.open(ctx, e, opts...)
		if err == nil {
			if failures > 0 {
				log.Info("gworker: connected to the database", slog.Duration("after", time.Since(since).Round(time.Millisecond)),
					slog.Int("attempts", failures+1))
			}
			return db, nil
		}
		if ctx.Err() != nil || !connectWillClear(err) {
			return nil, err
		}
		failures++
		what, details := err.Error(), ""
		var ce *connectError
		if errors.As(err, &ce) {
			what, details = ce.what, ce.details
		}
		if since.IsZero() {
			since = time.Now()
		}
		if what != problem {
			problem = what
			log.Warn("gworker: cannot connect to the database yet: "+what+"; retrying with backoff until it answers",
				slog.String("error", details))
		} else {
			log.Debug("gworker: connecting to the database failed again", slog.Int("failures", failures), slog.String("error", details))
		}
		delay = min(max(2*delay, connectRetryMin), connectRetryMax)
		t := time.NewTimer(delay/2 + rand.N(delay/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// connectWillClear reports whether a failure to connect may end by itself,
// so that waiting is worth it: nothing answers at the address yet, the
// connection broke during start-up, or the server (or PgBouncer in front
// of it) refused it for now.
// A bad connection string, failed authentication, a missing database or
// role, an unresolvable host and TLS problems will not.
func connectWillClear(err error) bool {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return false
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "57P03", // cannot_connect_now: starting up, shutting down, in recovery
			"53300", // too_many_connections
			"57P01", // admin_shutdown, while we were connecting
			"08006": // connection_failure
			return true
		case "08P01":
			// PgBouncer's answers while PostgreSQL behind it is down or
			// busy; elsewhere 08P01 is a protocol violation, which will
			// not clear.
			for _, m := range []string{"server login has been failing", "query_wait_timeout", "no more connections allowed"} {
				if strings.HasPrefix(pg.Message, m) {
					return true
				}
			}
		}
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsTimeout || dns.IsTemporary
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, os.ErrNotExist) || // the server's socket file is not there yet
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || isTimeout(err)
}
