package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

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
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) {
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
	var dns *net.DNSError
	switch {
	case errors.As(err, &pg):
		switch pg.Code {
		case "3D000":
			out.what = fmt.Sprintf("no such database %q on %s", cfg.Database, where)
		case "28P01":
			out.what = fmt.Sprintf("authentication failed for user %q on %s (wrong password?)", cfg.User, where)
		case "28000":
			out.what = fmt.Sprintf("user %q may not connect to database %q on %s (no such role, or pg_hba.conf refuses it)", cfg.User, cfg.Database, where)
		case "53300":
			out.what = fmt.Sprintf("the server at %s has too many connections", where)
		case "57P03":
			out.what = fmt.Sprintf("the server at %s is starting up or shutting down", where)
		default:
			out.what = fmt.Sprintf("the server at %s refused the connection: %s (SQLSTATE %s)", where, pg.Message, pg.Code)
		}
	case errors.As(err, &dns):
		out.what = fmt.Sprintf("cannot resolve the host %q", cfg.Host)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, os.ErrNotExist):
		out.what = fmt.Sprintf("no PostgreSQL server answers at %s (connection refused)", where)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		out.what = fmt.Sprintf("timed out connecting to %s (server unreachable)", where)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		out.what = fmt.Sprintf("the server at %s is unreachable (no route)", where)
	default:
		out.what = fmt.Sprintf("cannot connect to PostgreSQL at %s", where)
	}
	return out
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
