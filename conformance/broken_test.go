package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/conformance"
	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// envBroken names the broken driver TestBrokenDriverChild runs the suite
// against; the test binary runs itself with it set.
const envBroken = "GWORKER_CONFORMANCE_BROKEN"

// brokenDrivers are pgxdriver with one plausible bug each, the part of the
// suite that must catch it, and what its failure must say.
var brokenDrivers = []struct {
	kind string
	run  string // -test.run pattern below TestBrokenDriverChild
	want []string
}{
	{
		// An adapter that maps nil to a zero value instead of SQL NULL.
		kind: "nil-as-empty-string",
		run:  "^Contract$/^(Arguments|ArgumentsInExec)$",
		want: []string{
			`contract item "arguments" broke: nil as text (<nil>): the server received ""`,
			"nil (SQL NULL)",
			"fix in the driver: map each Go type",
		},
	},
	{
		// A listener that treats an empty payload as nothing to deliver.
		kind: "drops-empty-payloads",
		run:  "^Contract$/^ListenDelivers$",
		want: []string{
			`contract item "LISTEN delivery" broke: notification 3 of 5: got {Channel: "Gw Conf-`,
			`want {Channel: "gwconf:`,
			`Payload: ""}`,
			"the empty payload included",
			"fix in the driver: wait for the server to acknowledge every LISTEN",
		},
	},
	{
		// An adapter that formats errors with %v, losing their type.
		kind: "loses-sqlstate",
		run:  "^(Contract|Engine)$/^(ErrorsExposeSQLState|MigrateConcurrently)$",
		want: []string{
			`contract item "errors expose SQLSTATE" broke: division by zero in Exec: errors.As(err, &interface{ SQLState() string }) gives "", want "22012"`,
			"core.Migrate 2 of 3 running at once on one new schema failed",
			"fix in the driver: return the library's error as it is or wrapped with %w",
		},
	},
}

// The suite fails on each broken driver, naming the contract item, and
// passes on the same part of the suite with the driver intact.
func TestSuiteCatchesBrokenDrivers(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	for _, b := range brokenDrivers {
		t.Run(b.kind, func(t *testing.T) {
			t.Parallel()
			t.Run("broken", func(t *testing.T) {
				t.Parallel()
				out, err := runChild(t, url, b.kind, b.run)
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ExitCode() != 1 {
					t.Fatalf("the suite on a driver that %s exited with %v, want status 1 (a test failure); output:\n%s", b.kind, err, out)
				}
				for _, w := range b.want {
					if !strings.Contains(out, w) {
						t.Errorf("the failure output does not contain %q; output:\n%s", w, out)
					}
				}
				if strings.Contains(out, "panic:") {
					t.Errorf("the suite panicked:\n%s", out)
				}
			})
			t.Run("intact", func(t *testing.T) {
				t.Parallel()
				if out, err := runChild(t, url, "intact", b.run); err != nil {
					t.Fatalf("the same tests on the intact driver: %v\n%s", err, out)
				}
			})
		})
	}
}

// runChild runs this test binary's TestBrokenDriverChild with the given
// broken driver and sub-tests, on the parent's server.
func runChild(t *testing.T, url, kind, run string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBrokenDriverChild$/"+run, "-test.v", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), envBroken+"="+kind, pgtest.EnvURL+"="+url)
	out, err := cmd.CombinedOutput()
	// Keep the output readable in the parent's failure messages.
	return regexp.MustCompile(`(?m)^=== (RUN|PAUSE|CONT).*\n`).ReplaceAllString(string(out), ""), err
}

// TestBrokenDriverChild runs the suite on a broken driver when the parent
// test starts this binary with GWORKER_CONFORMANCE_BROKEN set; otherwise it
// does nothing.
func TestBrokenDriverChild(t *testing.T) {
	kind := os.Getenv(envBroken)
	if kind == "" {
		return
	}
	conformance.Run(t, conformance.Harness{
		NewDatabase: func(t testing.TB) core.Database {
			pool, err := pgxpool.New(context.Background(), pgtest.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			return breakDriver(kind, pgxdriver.New(pool))
		},
		NewSchema: pgtest.Schema,
	})
}

func breakDriver(kind string, db core.Database) core.Database {
	switch kind {
	case "intact":
		return db
	case "nil-as-empty-string":
		return nilAsEmpty{db}
	case "drops-empty-payloads":
		return emptyPayloadDropper{db}
	case "loses-sqlstate":
		return sqlStateLoser{db}
	}
	panic("unknown broken driver " + kind)
}

// nilAsEmpty sends nil arguments as "".
type nilAsEmpty struct{ core.Database }

func emptyForNil(args []any) []any {
	out := append([]any(nil), args...)
	for i, a := range out {
		if a == nil {
			out[i] = ""
		}
	}
	return out
}

func (d nilAsEmpty) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return d.Database.Exec(ctx, sql, emptyForNil(args)...)
}

func (d nilAsEmpty) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	return d.Database.Query(ctx, sql, emptyForNil(args)...)
}

// emptyPayloadDropper's sessions skip notifications without a payload.
type emptyPayloadDropper struct{ core.Database }

func (d emptyPayloadDropper) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	n, err := d.Database.Listen(ctx, channels...)
	if err != nil {
		return nil, err
	}
	return payloadDropper{n}, nil
}

type payloadDropper struct{ core.Notifications }

func (n payloadDropper) Receive(ctx context.Context) (core.Notification, error) {
	for {
		msg, err := n.Notifications.Receive(ctx)
		if err != nil || msg.Reconnected || msg.Payload != "" {
			return msg, err
		}
	}
}

// sqlStateLoser formats errors with %v.
type sqlStateLoser struct{ core.Database }

func flatten(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("statement failed: %v", err)
}

func (d sqlStateLoser) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	n, err := d.Database.Exec(ctx, sql, args...)
	return n, flatten(err)
}

func (d sqlStateLoser) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	rows, err := d.Database.Query(ctx, sql, args...)
	if err != nil {
		return nil, flatten(err)
	}
	return flatRows{rows}, nil
}

func (d sqlStateLoser) Begin(ctx context.Context) (core.Transaction, error) {
	tx, err := d.Database.Begin(ctx)
	if err != nil {
		return nil, flatten(err)
	}
	return flatTx{tx}, nil
}

type flatRows struct{ core.Rows }

func (r flatRows) Err() error   { return flatten(r.Rows.Err()) }
func (r flatRows) Close() error { return flatten(r.Rows.Close()) }

type flatTx struct{ core.Transaction }

func (t flatTx) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	n, err := t.Transaction.Exec(ctx, sql, args...)
	return n, flatten(err)
}

func (t flatTx) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	rows, err := t.Transaction.Query(ctx, sql, args...)
	if err != nil {
		return nil, flatten(err)
	}
	return flatRows{rows}, nil
}

func (t flatTx) Commit(ctx context.Context) error { return flatten(t.Transaction.Commit(ctx)) }
