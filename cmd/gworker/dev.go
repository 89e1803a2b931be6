package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

const (
	// defaultDevPort is the development server's port: not 5432, so that it
	// runs beside a PostgreSQL the machine already has.
	defaultDevPort = 55432
	// envDevDir overrides where the development server keeps its files.
	envDevDir = "GWORKER_DEV_DIR"
	// rootDevDir is where the development server lives when gworker runs as
	// root and the cache directory is closed to the postgres user that the
	// server must run as (/root is private); /var/tmp survives reboots.
	rootDevDir = "/var/tmp/gworker/dev"
)

func devCommand() *command {
	return &command{
		name:     "dev",
		synopsis: "[--port N] [--detach | --stop]",
		summary:  "start a local PostgreSQL for development and print its DATABASE_URL",
		help: `
Starts a PostgreSQL server for development from the PostgreSQL programs
installed on this machine (initdb and postgres: Debian/Ubuntu package
postgresql, Fedora postgresql-server, Homebrew postgresql@16), installs the
schema in it, and prints the line that points the other commands at it:

  export DATABASE_URL='postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable'

Only that line goes to standard output, so that

  eval "$(gworker dev --detach)"

sets the variable in the current shell. The server listens on 127.0.0.1
only and trusts every local connection: it is for development, not for
data that matters. Its data is kept between runs in the user's cache
directory (~/.cache/gworker/dev on Linux, ~/Library/Caches/gworker/dev on
macOS; $` + envDevDir + ` overrides it; as root, whose home the server's
postgres user cannot enter, ` + rootDevDir + `).

Without --detach it runs until Ctrl-C (SIGINT or SIGTERM), then stops the
server. With --detach it leaves the server running and exits; "gworker dev
--stop" stops it, as it stops one whose gworker dev was killed.

When the server already runs (started by another gworker dev, detached or
not), gworker dev does not start a second one: it migrates the schema,
prints the same export line and exits at once, leaving the server to
whoever started it.`,
		setup: func(fs *flagSet) action {
			port, detach, stop := defaultDevPort, false, false
			portFlag := &intValue{p: &port, min: 1, max: 65535}
			fs.flag(portFlag, "N", fmt.Sprintf("TCP port for a server it starts (default: %d, or a free one when that is taken)", defaultDevPort), "port")
			fs.flag(&boolValue{p: &detach}, "", "leave the server running and exit once it is ready", "detach")
			fs.flag(&boolValue{p: &stop}, "", "stop the development server left running, keeping its data", "stop")
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) > 0 {
					return usagef("dev takes no arguments, got %q", args[0])
				}
				if stop && detach {
					return usagef("--stop and --detach do not go together")
				}
				dir, err := devDir(e)
				if err != nil {
					return err
				}
				if stop {
					return devStop(ctx, e, dir)
				}
				return devRun(ctx, e, fs.opts, dir, port, !portFlag.set, detach)
			}
		},
	}
}

// devDir returns where the development server keeps its files.
func devDir(e *env) (string, error) {
	if d := e.getenv(envDevDir); d != "" {
		return filepath.Abs(d)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the development server (%v): set $%s", err, envDevDir)
	}
	dir := filepath.Join(cache, "gworker", "dev")
	if !pgtest.ServerCanReach(dir) {
		return rootDevDir, nil
	}
	return dir, nil
}

func devStop(ctx context.Context, e *env, dir string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	stopped, err := pgtest.StopPersistent(ctx, dir)
	if err != nil {
		return err
	}
	if stopped {
		fmt.Fprintf(e.stderr, "gworker dev: stopped the development server (its data stays in %s)\n", dir)
	} else {
		fmt.Fprintf(e.stderr, "gworker dev: no development server is running (in %s)\n", dir)
	}
	return nil
}

// devRun starts or reuses the server and migrates it; anyPort allows
// another port when port is taken.
func devRun(ctx context.Context, e *env, opts *commonFlags, dir string, port int, anyPort, detach bool) error {
	// Ctrl-C ends the wait below, not the process: the server must be
	// stopped first.
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	srv, err := pgtest.StartPersistent(startCtx, dir, port, pgtest.Options{})
	if errors.Is(err, pgtest.ErrPortInUse) && anyPort {
		// The default port is only a preference; a server found running
		// later is found by its files, whatever its port.
		if port, err = freePort(); err == nil {
			srv, err = pgtest.StartPersistent(startCtx, dir, port, pgtest.Options{})
		}
	}
	if errors.Is(err, pgtest.ErrNoServerBinaries) {
		return fmt.Errorf("gworker dev runs the PostgreSQL server programs installed on this machine, and there are none (%v): "+
			"install them (Debian/Ubuntu: sudo apt-get install postgresql; Fedora: sudo dnf install postgresql-server; "+
			"macOS: brew install postgresql@16), or set DATABASE_URL to a server you have", err)
	}
	if err != nil {
		return fmt.Errorf("start the development server (pass --port N for another port): %w", err)
	}
	owned := !srv.Reused()
	// Stop what we started on every way out but a detached success.
	keep := false
	defer func() {
		if owned && !keep {
			if err := srv.Stop(); err != nil {
				fmt.Fprintf(e.stderr, "gworker dev: stop the server: %v\n", err)
			}
		}
	}()

	db, err := pgxdriver.Open(startCtx, srv.URL())
	if err != nil {
		return describeConnectError(err)
	}
	msg, err := migrateSchema(startCtx, db, opts.schemaName(e), opts.logger(e, slog.LevelWarn))
	db.Close()
	if err != nil {
		return err
	}

	where := srv.URL()
	if u, err := url.Parse(where); err == nil {
		where = u.Host
	}
	if owned {
		fmt.Fprintf(e.stderr, "gworker dev: PostgreSQL running on %s (pid %d), data in %s\n", where, srv.PID(), dir)
	} else {
		fmt.Fprintf(e.stderr, "gworker dev: the development server is already running on %s (pid %d), data in %s\n", where, srv.PID(), dir)
	}
	fmt.Fprintf(e.stderr, "gworker dev: %s\n", msg)
	fmt.Fprintf(e.stdout, "export %s=%s\n", envDatabaseURL, shellQuote(srv.URL()))
	switch {
	case !owned:
		fmt.Fprintln(e.stderr, `gworker dev: left to whoever started it; "gworker dev --stop" stops it`)
		return nil
	case detach:
		keep = true
		fmt.Fprintln(e.stderr, `gworker dev: left running; "gworker dev --stop" stops it`)
		return nil
	}
	fmt.Fprintln(e.stderr, "gworker dev: press Ctrl-C to stop the server")
	<-ctx.Done()
	fmt.Fprintln(e.stderr, "gworker dev: stopping the server")
	return nil
}

// shellQuote quotes s for a POSIX shell: the URL's ? and & must not be
// taken as a pattern or a background job.
func shellQuote(s string) string {
	out := "'"
	for _, r := range s {
		if r == '\'' {
			out += `'\''`
		} else {
			out += string(r)
		}
	}
	return out + "'"
}

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
