package pgtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
)

// EnvURL names the environment variable that, when set, is used as the test
// database instead of starting a server.
const EnvURL = "GWORKER_TEST_DATABASE_URL"

// ErrNoPostgreSQL is returned (wrapped, with the reasons) when no source
// gives a server.
var ErrNoPostgreSQL = errors.New("pgtest: no PostgreSQL available: set " + EnvURL +
	", or install the server (Debian/Ubuntu: apt-get install postgresql), or run a Docker daemon")

// ErrRootWithoutPostgresUser is returned when the process runs as root, which
// PostgreSQL refuses, and there is no "postgres" OS user to run it as.
var ErrRootWithoutPostgresUser = errors.New(`pgtest: running as root, which PostgreSQL refuses, ` +
	`and there is no "postgres" OS user to run the server as: create one (useradd --system --user-group postgres), ` +
	`run the tests as a non-root user, or set ` + EnvURL)

// ErrNoServerBinaries is returned (wrapped, with the places searched) when
// there are no local PostgreSQL server binaries (initdb and postgres); a
// source that is simply not there, as opposed to one that failed.
var ErrNoServerBinaries = errors.New("no PostgreSQL server binaries (initdb and postgres) found")

// errNoDockerDaemon: the Docker source is simply not there.
var errNoDockerDaemon = errors.New("no Docker daemon answers")

// Source says where a Server came from.
type Source string

// The sources, in the order Start tries them.
const (
	SourceEnv    Source = "env"    // $GWORKER_TEST_DATABASE_URL
	SourceLocal  Source = "local"  // a cluster from the local PostgreSQL binaries
	SourceDocker Source = "docker" // a testcontainers-go container
)

// DefaultDockerImage is the image used when falling back to Docker.
const DefaultDockerImage = "postgres:16-alpine"

// Options configures Start. The zero value gives the defaults.
type Options struct {
	// Logf receives progress messages: which source was used, how long the
	// start took. Nil discards them. It is only called from within Start,
	// StartLocal and the Server's methods.
	Logf func(format string, args ...any)

	// Settings are extra server settings, passed as "-c name=value" and
	// applied over the test-speed defaults (fsync, synchronous_commit and
	// full_page_writes off; max_connections 300; shared_buffers 32MB).
	// A benchmark wanting durable commits sets "fsync" and friends to "on".
	// port, listen_addresses and unix_socket_directories are pgtest's.
	// Ignored for $GWORKER_TEST_DATABASE_URL.
	Settings map[string]string

	// DockerImage is the image for the Docker fallback; empty means
	// DefaultDockerImage.
	DockerImage string
}

func (o Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Server is a running PostgreSQL server. Its owner stops it with Stop.
type Server struct {
	source Source
	url    string
	dir    string       // the local cluster's temporary directory
	pid    int          // the local postmaster's pid
	stop   func() error // nil when there is nothing to stop

	// Local clusters only; nil for the other sources.
	shutdown func(ShutdownMode) error
	restart  func(context.Context) error

	// reused: StartPersistent found the server already running.
	reused bool

	stopOnce sync.Once
	stopErr  error
}

// URL returns the connection string. For local clusters and containers it is
// a postgres:// URL for the superuser "postgres" and database "postgres"
// with sslmode=disable; for $GWORKER_TEST_DATABASE_URL it is that value.
func (s *Server) URL() string { return s.url }

// Source says where the server came from.
func (s *Server) Source() Source { return s.source }

// Dir returns the temporary directory holding a local cluster (its data
// directory is Dir()/data), or "" for other sources.
func (s *Server) Dir() string { return s.dir }

// PID returns a local cluster's postmaster process id, or 0 for other
// sources.
func (s *Server) PID() int { return s.pid }

// Reused reports whether StartPersistent found the server already running
// rather than starting it.
func (s *Server) Reused() bool { return s.reused }

// Stop stops the server and removes what it left behind. It is safe to call
// more than once and from several goroutines; later calls return the first
// call's result. For $GWORKER_TEST_DATABASE_URL it does nothing; for
// StartPersistent's cluster it stops the server and keeps its directory.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.stop != nil {
			s.stopErr = s.stop()
		}
	})
	return s.stopErr
}

// ShutdownMode says how Server.Shutdown stops a local cluster, as pg_ctl
// stop's -m does.
type ShutdownMode string

const (
	// ShutdownFast disconnects the clients, rolling back their open
	// transactions, writes a checkpoint and exits: a planned restart.
	ShutdownFast ShutdownMode = "fast"
	// ShutdownImmediate makes every server process exit at once, without a
	// checkpoint: as after a crash, the next start replays the WAL. Commits
	// made with synchronous_commit off that were not yet written are lost.
	ShutdownImmediate ShutdownMode = "immediate"
)

// Shutdown stops a local cluster's server the way mode says but keeps its
// data directory and port, so that Restart brings the same database back
// at the same URL: a database outage for tests of what clients do during
// one. It fails for the other sources, which pgtest cannot restart; use
// StartLocal for a server that must be. Shutting down a server already
// shut down does nothing.
func (s *Server) Shutdown(mode ShutdownMode) error {
	if s.shutdown == nil {
		return s.notRestartable()
	}
	return s.shutdown(mode)
}

// Restart starts a local cluster's server again after Shutdown, on the same
// port and data directory, and returns once it accepts connections (after
// crash recovery, following ShutdownImmediate). A running server is first
// shut down fast, as pg_ctl restart does. ctx bounds the start; without a
// deadline it is bounded by a minute. It fails after Stop, and for sources
// other than a local cluster.
func (s *Server) Restart(ctx context.Context) error {
	if s.restart == nil {
		return s.notRestartable()
	}
	return s.restart(ctx)
}

func (s *Server) notRestartable() error {
	return fmt.Errorf("pgtest: a server from source %q cannot be shut down and restarted: only a local cluster can (pgtest.StartLocal)", s.source)
}

// StartLocal starts a cluster from the local PostgreSQL binaries, ignoring
// $GWORKER_TEST_DATABASE_URL and Docker: for tests that stop and restart
// their server (Shutdown, Restart) or change its configuration, which they
// must not do to a server they share. The caller owns the server and must
// Stop it. Without local binaries the error says what to install.
func StartLocal(ctx context.Context, opts Options) (*Server, error) {
	if _, err := serverSettings(opts.Settings); err != nil {
		return nil, err
	}
	s, err := startLocal(ctx, opts)
	if errors.Is(err, ErrNoServerBinaries) {
		return nil, fmt.Errorf("%w: %v", ErrNoLocalPostgreSQL, err)
	}
	return s, err
}

// ErrNoLocalPostgreSQL is returned (wrapped, with the places searched) by
// StartLocal when there are no PostgreSQL server binaries.
var ErrNoLocalPostgreSQL = errors.New("pgtest: this needs a PostgreSQL cluster of its own that it can stop and restart, " +
	"from the local server binaries, and there are none: install the server (Debian/Ubuntu: apt-get install postgresql, or make postgres); " +
	"$" + EnvURL + " and Docker cannot serve here")

// Start starts (or, for $GWORKER_TEST_DATABASE_URL, borrows) a server from
// the first source that works; see the package documentation for the order.
// The caller owns the server and must Stop it. ctx bounds the start only.
func Start(ctx context.Context, opts Options) (*Server, error) {
	return start(ctx, opts, sources{
		envURL: os.Getenv(EnvURL),
		local:  startLocal,
		docker: startDocker,
	})
}

// sources lets tests replace the environment and each source.
type sources struct {
	envURL string
	local  func(context.Context, Options) (*Server, error)
	docker func(context.Context, Options) (*Server, error)
}

func start(ctx context.Context, opts Options, src sources) (*Server, error) {
	if src.envURL != "" {
		if len(opts.Settings) > 0 {
			opts.logf("pgtest: Options.Settings ignored: using $%s as is", EnvURL)
		}
		opts.logf("pgtest: using $%s", EnvURL)
		return &Server{source: SourceEnv, url: src.envURL}, nil
	}
	if _, err := serverSettings(opts.Settings); err != nil {
		return nil, err
	}

	s, localErr := src.local(ctx, opts)
	if localErr == nil {
		return s, nil
	}
	if !errors.Is(localErr, ErrNoServerBinaries) {
		opts.logf("pgtest: local PostgreSQL failed, trying Docker: %v", localErr)
	}
	s, dockerErr := src.docker(ctx, opts)
	if dockerErr == nil {
		return s, nil
	}
	if errors.Is(localErr, ErrNoServerBinaries) && errors.Is(dockerErr, errNoDockerDaemon) {
		return nil, fmt.Errorf("%w (local: %v; docker: %v)", ErrNoPostgreSQL, localErr, dockerErr)
	}
	return nil, fmt.Errorf("pgtest: could not start PostgreSQL:\n  local: %w\n  docker: %w", localErr, dockerErr)
}

// testSpeedSettings trade durability for speed: a test server's data is
// thrown away anyway.
var testSpeedSettings = map[string]string{
	"fsync":              "off",
	"synchronous_commit": "off",
	"full_page_writes":   "off",
	"max_connections":    "300",
	"shared_buffers":     "32MB",
}

// reservedSettings are chosen by pgtest; letting a caller change them would
// break how pgtest reaches the server.
var reservedSettings = []string{"port", "listen_addresses", "unix_socket_directories"}

// serverSettings merges the caller's settings over the test-speed defaults.
func serverSettings(extra map[string]string) (map[string]string, error) {
	return settingsOver(testSpeedSettings, extra)
}

// settingsOver merges the caller's settings over base, refusing names that
// are not settings or that pgtest chooses.
func settingsOver(base, extra map[string]string) (map[string]string, error) {
	settings := maps.Clone(base)
	if settings == nil {
		settings = map[string]string{}
	}
	for name, value := range extra {
		if name == "" || strings.ContainsAny(name, "= \t\r\n") {
			return nil, fmt.Errorf("pgtest: Options.Settings: invalid setting name %q", name)
		}
		for _, r := range reservedSettings {
			if strings.EqualFold(name, r) {
				return nil, fmt.Errorf("pgtest: Options.Settings: %q is chosen by pgtest and cannot be set", name)
			}
		}
		settings[name] = value
	}
	return settings, nil
}
