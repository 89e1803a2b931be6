package pgtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// dockerProbeTimeout bounds the check for a daemon, so a machine without one
// gets its answer fast.
const dockerProbeTimeout = 5 * time.Second

// startDocker starts a container when a Docker daemon answers.
func startDocker(ctx context.Context, opts Options) (*Server, error) {
	if err := probeDocker(ctx); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoDockerDaemon, err)
	}
	settings, err := serverSettings(opts.Settings)
	if err != nil {
		return nil, err
	}
	image := opts.DockerImage
	if image == "" {
		image = DefaultDockerImage
	}

	begin := time.Now()
	cmd := []string{"postgres"}
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		cmd = append(cmd, "-c", name+"="+settings[name])
	}
	ctr, err := tcpostgres.Run(ctx, image,
		testcontainers.WithLogger(dockerLogger(opts)),
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		testcontainers.WithCmd(cmd...),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return nil, fmt.Errorf("pgtest: start a %s container: %w", image, err)
	}
	url, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		_ = testcontainers.TerminateContainer(ctr)
		return nil, fmt.Errorf("pgtest: container connection string: %w", err)
	}
	opts.logf("pgtest: PostgreSQL container %s ready in %v", image, time.Since(begin).Round(time.Millisecond))
	return &Server{
		source: SourceDocker,
		url:    url,
		// testcontainers' reaper removes the container if we die first.
		stop: func() error { return testcontainers.TerminateContainer(ctr) },
	}, nil
}

// probeDocker reports whether a Docker daemon answers, within
// dockerProbeTimeout.
func probeDocker(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, dockerProbeTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		// Discovery runs partly without our context, so it may outlive the
		// timeout; the buffered channel lets it finish on its own.
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("docker discovery panicked: %v", r)
			}
		}()
		provider, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tclog.NewNoopLogger()))
		if err != nil {
			done <- err
			return
		}
		done <- provider.Health(ctx) // Health closes the provider
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %v", dockerProbeTimeout)
	}
}

type logfLogger func(format string, args ...any)

func (f logfLogger) Printf(format string, args ...any) { f(format, args...) }

func dockerLogger(opts Options) tclog.Logger {
	if opts.Logf == nil {
		return tclog.NewNoopLogger()
	}
	return logfLogger(opts.Logf)
}
