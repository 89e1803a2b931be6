package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// connClass is what an error says about the connection to the database. It
// is judged once, by classifyConnError, for both the message a user reads
// (describeConnectError) and whether run waits for the database instead of
// giving up (transient).
type connClass int

const (
	// notConnection: the error is not about the connection (a statement's
	// own error, a migration refused, a cancelled context), or it is one
	// this command does not know.
	notConnection     connClass = iota
	connBadURL                  // the connection string does not parse
	connNoHost                  // the host name does not resolve
	connAuthFailed              // 28P01
	connRoleRefused             // 28000: no such role, or pg_hba.conf refuses it
	connNoDatabase              // 3D000
	connServerRefused           // the server refused with another SQLSTATE

	// The classes from here on end by themselves: the server is starting,
	// restarting, failing over or busy.
	connRefused      // nothing listens at the address (or no socket file yet)
	connTimedOut     // no answer in time
	connUnreachable  // no route to the host
	connDNSTemporary // the name server failed for now
	connTooMany      // 53300 too_many_connections
	connStarting     // 57P03 cannot_connect_now: starting up, shutting down, in recovery
	connShutdown     // 57P01/57P02: the server ended the session (shutdown, crash of another backend)
	connLost         // the connection broke: reset, closed, 08000/08003/08006
	connPoolerWait   // PgBouncer: PostgreSQL behind it is down or busy
)

// transient reports whether waiting is worth it: the problem may end by
// itself.
func (c connClass) transient() bool { return c >= connRefused }

// pgbouncerWaits are the starts of PgBouncer's 08P01 messages while
// PostgreSQL behind it is down or busy; elsewhere 08P01 is a protocol
// violation, which will not clear.
var pgbouncerWaits = []string{"server login has been failing", "query_wait_timeout", "no more connections allowed"}

// classifyConnError says what err, from connecting or from any statement,
// means for the connection.
func classifyConnError(err error) connClass {
	if err == nil {
		return notConnection
	}
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return connBadURL
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "28P01":
			return connAuthFailed
		case "28000":
			return connRoleRefused
		case "3D000":
			return connNoDatabase
		case "53300":
			return connTooMany
		case "57P03":
			return connStarting
		case "57P01", "57P02": // admin_shutdown, crash_shutdown
			return connShutdown
		case "08000", "08003", "08006":
			return connLost
		case "08P01":
			if slices.ContainsFunc(pgbouncerWaits, func(m string) bool { return strings.HasPrefix(pg.Message, m) }) {
				return connPoolerWait
			}
		}
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) {
			return connServerRefused
		}
		return notConnection // the statement's own error
	}
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		if dns.IsTimeout || dns.IsTemporary {
			return connDNSTemporary
		}
		return connNoHost
	case errors.Is(err, context.Canceled):
		return notConnection // given up on, not failed
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, os.ErrNotExist):
		return connRefused
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return connTimedOut
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return connUnreachable
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, net.ErrClosed):
		return connLost
	}
	return notConnection
}

// connectError is a failure to connect, said the way report prints it: what
// failed, on one line, then the details.
type connectError struct {
	what    string // "no PostgreSQL server answers at localhost:5432", ...
	details string // each address tried and what it answered, once
	err     error
}

func (e *connectError) Error() string { return e.what + ": " + e.details }
func (e *connectError) Unwrap() error { return e.err }

// describeConnectError turns the driver's error into a connectError. pgx
// tries every address of a host (IPv6 and IPv4 for localhost), each with
// and without TLS under sslmode=prefer, and repeats its text for every
// attempt; the user first needs to know which of a few things went wrong.
func describeConnectError(err error) error {
	class := classifyConnError(err)
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		var pe *pgconn.ParseConfigError
		if class == connBadURL && errors.As(err, &pe) {
			return &connectError{what: "invalid connection string", details: strings.TrimPrefix(pe.Error(), "cannot parse "), err: err}
		}
		return &connectError{what: "cannot connect to PostgreSQL", details: strings.TrimPrefix(err.Error(), "pgxdriver: "), err: err}
	}
	cfg := ce.Config
	where := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	if strings.HasPrefix(cfg.Host, "/") {
		where = fmt.Sprintf("the socket in %s (port %d)", cfg.Host, cfg.Port)
	}
	out := &connectError{details: attempts(ce), err: err}
	var pg *pgconn.PgError
	switch {
	case class == connNoDatabase:
		out.what = fmt.Sprintf("no such database %q on %s", cfg.Database, where)
	case class == connAuthFailed:
		out.what = fmt.Sprintf("authentication failed for user %q on %s (wrong password?)", cfg.User, where)
	case class == connRoleRefused:
		out.what = fmt.Sprintf("user %q may not connect to database %q on %s (no such role, or pg_hba.conf refuses it)", cfg.User, cfg.Database, where)
	case class == connTooMany:
		out.what = fmt.Sprintf("the server at %s has too many connections", where)
	case class == connStarting:
		out.what = fmt.Sprintf("the server at %s is starting up or shutting down", where)
	case errors.As(err, &pg):
		out.what = fmt.Sprintf("the server at %s refused the connection: %s (SQLSTATE %s)", where, pg.Message, pg.Code)
	case class == connNoHost, class == connDNSTemporary:
		out.what = fmt.Sprintf("cannot resolve the host %q", cfg.Host)
	case class == connRefused:
		out.what = fmt.Sprintf("no PostgreSQL server answers at %s (connection refused)", where)
	case class == connTimedOut:
		out.what = fmt.Sprintf("timed out connecting to %s (server unreachable)", where)
	case class == connUnreachable:
		out.what = fmt.Sprintf("the server at %s is unreachable (no route)", where)
	default:
		out.what = fmt.Sprintf("cannot connect to PostgreSQL at %s", where)
	}
	return out
}

// describeOutage says what is wrong while run waits for the database, from
// a failure to connect or a statement of its start that lost its
// connection.
func describeOutage(err error) (what, details string) {
	var ce *connectError
	if errors.As(err, &ce) {
		return ce.what, ce.details
	}
	var pce *pgconn.ConnectError
	if errors.As(err, &pce) && errors.As(describeConnectError(err), &ce) {
		return ce.what, ce.details
	}
	switch classifyConnError(err) {
	case connShutdown, connStarting:
		what = "the server is shutting down or restarting"
	case connTooMany:
		what = "the server has too many connections"
	default:
		what = "the connection to the database broke"
	}
	return what, oneLine(err.Error())
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// attempts lists what each address answered, each distinct text once.
func attempts(ce *pgconn.ConnectError) string {
	var texts []string
	for _, e := range leaves(errors.Unwrap(ce)) {
		if t := e.Error(); !slices.Contains(texts, t) {
			texts = append(texts, t)
		}
	}
	if len(texts) == 0 {
		return ce.Error()
	}
	return fmt.Sprintf("user %q, database %q: %s", ce.Config.User, ce.Config.Database, strings.Join(texts, "; "))
}

// leaves flattens errors.Join trees: pgx joins one error per attempt.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

// schemaError says to run gworker migrate when err is the server not
// finding the schema or one of its objects: the schema is not installed
// (or is older than this gworker), which is the usual cause.
func schemaError(schema string, err error) error {
	var already *schemaMissingError
	if err == nil || errors.As(err, &already) {
		return err
	}
	switch sqlState(err) {
	case "3F000", "42883", "42P01", "42704": // no such schema, function, table or type
		return &schemaMissingError{schema: schema, err: err}
	}
	return err
}

type schemaMissingError struct {
	schema string
	err    error
}

func (e *schemaMissingError) Error() string {
	return fmt.Sprintf("schema %q is not installed in this database, or is out of date: run \"gworker migrate\" (%v)", e.schema, e.err)
}
func (e *schemaMissingError) Unwrap() error { return e.err }
