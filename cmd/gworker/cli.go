package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	// exitSchemaNewer is graphile-worker's status when the database carries
	// a breaking migration this program does not know.
	exitSchemaNewer = 57
)

// Environment variables read by every command.
const (
	envDatabaseURL = "DATABASE_URL"
	envSchema      = "GRAPHILE_WORKER_SCHEMA"
	// envListenURL is gworker run's --listen-connection: a direct
	// connection for LISTEN when DATABASE_URL goes through PgBouncer.
	envListenURL = "DATABASE_LISTEN_URL"
)

// env is everything a command may touch of the outside world, so that tests
// run commands in-process.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// stdin answers confirmations, asked only when interactive says a
	// person is there.
	stdin       io.Reader
	interactive func() bool
	// environ is the environment executable tasks inherit.
	environ func() []string
}

// action runs a command with its positional arguments, its flags having been
// parsed into the variables its setup bound them to.
type action func(ctx context.Context, e *env, args []string) error

// command is one subcommand.
type command struct {
	name     string
	synopsis string // what follows "gworker NAME" in the usage line
	summary  string // one line for the command list
	help     string // shown by "gworker help NAME"
	// setup registers the command's flags on fs and returns its action.
	setup func(fs *flagSet) action
}

// commands lists the subcommands in the order the usage shows them.
func commands() []*command {
	cmds := []*command{devCommand(), migrateCommand(), addCommand(), runCommand(), jobsCommand(), jobCommand()}
	for _, a := range jobActions() {
		cmds = append(cmds, a.command())
	}
	return append(cmds, statsCommand(), queuesCommand(), tasksCommand(), cronCommand(), cleanupCommand(),
		forceUnlockCommand(), workersCommand(), sweepCommand(), adminCommand(), benchCommand(), versionCommand())
}

// commandNames lists every command name, help included, for suggestions.
func commandNames() []string {
	names := []string{"help"}
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return names
}

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run is the whole program: it runs the command args name and returns the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv, environ: os.Environ, stdin: os.Stdin, interactive: stdinIsTerminal}
	return e.main(ctx, args)
}

func (e *env) main(ctx context.Context, args []string) int {
	common := &commonFlags{}
	top := newFlagSet("", common)
	showVersion := false
	top.fs.Var(&boolValue{p: &showVersion}, "version", "print the version")
	if err := top.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			e.mainUsage(e.stdout, top)
			return exitOK
		}
		return e.usageError("", top.fixFlagNames(err))
	}
	if showVersion {
		return e.report("version", printVersion(e))
	}
	rest := top.fs.Args()
	if len(rest) == 0 {
		e.mainUsage(e.stderr, top)
		return exitUsage
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		return e.help(rest, common)
	}
	cmd := findCommand(name)
	if cmd == nil {
		// One line: the whole usage would bury the suggestion.
		return e.usageError("", fmt.Errorf("unknown command %q%s", name, didYouMean(name, commandNames(), "")))
	}
	fs := newFlagSet(cmd.name, common)
	act := cmd.setup(fs)
	pos, err := fs.parse(rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			e.commandUsage(e.stdout, cmd, fs)
			return exitOK
		}
		return e.usageError(cmd.name, err)
	}
	return e.report(cmd.name, schemaError(common.schemaName(e), act(ctx, e, pos)))
}

// help serves "gworker help [COMMAND]".
func (e *env) help(args []string, common *commonFlags) int {
	switch len(args) {
	case 0:
		e.mainUsage(e.stdout, newFlagSet("", common))
		return exitOK
	case 1:
		cmd := findCommand(args[0])
		if cmd == nil {
			return e.usageError("", fmt.Errorf("unknown command %q%s", args[0], didYouMean(args[0], commandNames(), "")))
		}
		fs := newFlagSet(cmd.name, common)
		cmd.setup(fs)
		e.commandUsage(e.stdout, cmd, fs)
		return exitOK
	default:
		return e.usageError("help", errors.New("takes at most one command name"))
	}
}

func (e *env) mainUsage(w io.Writer, top *flagSet) {
	fmt.Fprint(w, `gworker runs and manages graphile-worker jobs stored in PostgreSQL.

Usage:
  gworker [common flags] COMMAND [flags] [arguments]

Commands:
`)
	tw := newTable(w)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	fmt.Fprintf(tw, "  %s\t%s\n", "help", "show this help, or a command's (gworker help COMMAND)")
	tw.Flush()
	fmt.Fprint(w, "\nCommon flags (accepted before or after the command):\n")
	top.printFlags(w)
	fmt.Fprint(w, `
      --version   print the version and exit (as gworker version does)

Examples:
  eval "$(gworker dev --detach)"    # a local development database, in $DATABASE_URL
  gworker migrate -c postgres://localhost/app
  gworker add send_email '{"to": "someone@example.com"}' --queue mail
  gworker run --tasks ./tasks
`)
}

func (e *env) commandUsage(w io.Writer, cmd *command, fs *flagSet) {
	fmt.Fprintf(w, "Usage: gworker %s %s\n\n%s\n", cmd.name, cmd.synopsis, strings.TrimSpace(cmd.help))
	if fs.hasOwnFlags() {
		fmt.Fprint(w, "\nFlags:\n")
		fs.printOwnFlags(w)
	}
	fmt.Fprint(w, "\nCommon flags:\n")
	fs.printCommonFlags(w)
}

// usageError reports bad command-line syntax on one line.
func (e *env) usageError(cmdName string, err error) int {
	hint := `see "gworker help"`
	if cmdName != "" {
		hint = fmt.Sprintf("see \"gworker help %s\"", cmdName)
	}
	fmt.Fprintf(e.stderr, "gworker: %s (%s)\n", oneLine(err.Error()), hint)
	return exitUsage
}

// usageErr marks an action's error as a command-line mistake (exit status 2).
type usageErr struct{ msg string }

func (u *usageErr) Error() string { return u.msg }

func usagef(format string, args ...any) error { return &usageErr{msg: fmt.Sprintf(format, args...)} }

// report prints an action's error on one line and picks the exit status.
func (e *env) report(cmdName string, err error) int {
	if err == nil {
		return exitOK
	}
	var u *usageErr
	if errors.As(err, &u) {
		return e.usageError(cmdName, err)
	}
	var ce *connectError
	if errors.As(err, &ce) {
		// What failed first, on a line of its own; then the driver's
		// details, which a user may need but rarely reads first.
		fmt.Fprintf(e.stderr, "gworker: %s\n  %s\n", ce.what, oneLine(ce.details))
		return exitError
	}
	fmt.Fprintf(e.stderr, "gworker: %s\n", oneLine(err.Error()))
	var newer *core.DatabaseNewerError
	var breaking *core.BreakingMigrationError
	if errors.As(err, &newer) || errors.As(err, &breaking) {
		return exitSchemaNewer
	}
	return exitError
}

// oneLine drops core's own "gworker: " prefixes and folds lines (errors.Join
// separates with newlines) so that an error fits on one line.
func oneLine(msg string) string {
	msg = strings.TrimSpace(msg)
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		lines[i] = strings.ReplaceAll(strings.TrimPrefix(strings.TrimSpace(l), "gworker: "), ": gworker: ", ": ")
	}
	return strings.Join(lines, "; ")
}

// commonFlags are the flags every command takes.
type commonFlags struct {
	connection string
	schema     string
	verbose    bool
}

func (c *commonFlags) register(f *flagSet) {
	f.common = append(f.common,
		f.add(&stringValue{p: &c.connection}, "URL", "PostgreSQL connection string (default: $"+envDatabaseURL+")", "c", "connection"),
		f.add(&stringValue{p: &c.schema}, "NAME", "graphile-worker schema (default: $"+envSchema+", else "+core.DefaultSchema+")", "s", "schema"),
		f.add(&boolValue{p: &c.verbose}, "", "log more (debug level)", "v", "verbose"),
		f.doc("", "show help", "h", "help"),
	)
}

// errNoDatabase is what a command needing a database says when none is
// configured.
var errNoDatabase = errors.New(`no database; set DATABASE_URL (or pass -c URL) or run "gworker dev" for a local one`)

// connString returns the connection string: the flag, else $DATABASE_URL.
// With neither, libpq's PG* variables are used when PGHOST, PGDATABASE or
// PGSERVICE is set, as graphile-worker does.
func (c *commonFlags) connString(e *env) (string, error) {
	if c.connection != "" {
		return c.connection, nil
	}
	if u := e.getenv(envDatabaseURL); u != "" {
		return u, nil
	}
	for _, v := range []string{"PGHOST", "PGDATABASE", "PGSERVICE"} {
		if e.getenv(v) != "" {
			return "", nil // pgx reads the PG* variables itself
		}
	}
	return "", errNoDatabase
}

// schemaName returns the schema: the flag, else $GRAPHILE_WORKER_SCHEMA,
// else core.DefaultSchema.
func (c *commonFlags) schemaName(e *env) string {
	if c.schema != "" {
		return c.schema
	}
	if s := e.getenv(envSchema); s != "" {
		return s
	}
	return core.DefaultSchema
}

// logger returns a text logger on stderr: at least level base, debug with -v.
func (c *commonFlags) logger(e *env, base slog.Level) *slog.Logger {
	level := base
	if c.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
}

// open connects to the database.
func (c *commonFlags) open(ctx context.Context, e *env, opts ...pgxdriver.Option) (*pgxdriver.Driver, error) {
	url, err := c.connString(e)
	if err != nil {
		return nil, err
	}
	db, err := pgxdriver.Open(ctx, url, opts...)
	if err != nil {
		return nil, describeConnectError(err)
	}
	return db, nil
}
