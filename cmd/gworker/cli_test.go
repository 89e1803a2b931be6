package main

import (
	"context"
	"flag"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNoCommandPrintsUsageAndExits2(t *testing.T) {
	t.Parallel()
	r := runCLI(context.Background(), nil)
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	if !strings.Contains(r.stderr, "Usage:") || r.stdout != "" {
		t.Errorf("want usage on stderr only; stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

func TestHelpListsCommandsAndCommonFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		r := runCLI(context.Background(), nil, args...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		for _, want := range []string{"migrate", "add", "run", "help", "-c, --connection", "-s, --schema", "DATABASE_URL", "GRAPHILE_WORKER_SCHEMA"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v: usage does not mention %q:\n%s", args, want, r.stdout)
			}
		}
	}
}

func TestCommandHelpDocumentsEveryFlag(t *testing.T) {
	t.Parallel()
	for _, cmd := range commands() {
		for _, args := range [][]string{{"help", cmd.name}, {cmd.name, "-h"}, {cmd.name, "--help"}} {
			r := runCLI(context.Background(), nil, args...)
			if r.code != 0 || r.stderr != "" {
				t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
			}
			if !strings.HasPrefix(r.stdout, "Usage: gworker "+cmd.name) {
				t.Errorf("%v: output does not start with the usage line:\n%s", args, r.stdout)
			}
			fs := newFlagSet(cmd.name, &commonFlags{})
			cmd.setup(fs)
			fs.fs.VisitAll(func(f *flag.Flag) {
				name := "--" + f.Name
				if len(f.Name) == 1 {
					name = "-" + f.Name + ","
				}
				if !strings.Contains(r.stdout, name) {
					t.Errorf("%v: usage does not document %s:\n%s", args, name, r.stdout)
				}
			})
		}
	}
}

func TestUnknownCommandSuggestsTheNearestOnOneLine(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ args, want []string }{
		{[]string{"migarte"}, []string{`unknown command "migarte"`, "did you mean migrate?"}},
		{[]string{"mig"}, []string{"did you mean migrate?"}},
		{[]string{"wrokers"}, []string{"did you mean workers?"}},
		{[]string{"hepl"}, []string{"did you mean help?"}},
		{[]string{"help", "ad"}, []string{`unknown command "ad"`, "did you mean add?"}},
	} {
		r := runCLI(context.Background(), nil, tt.args...)
		assertOneLineError(t, r, tt.want...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d", tt.args, r.code, exitUsage)
		}
	}
	r := runCLI(context.Background(), nil, "frobnicate")
	assertOneLineError(t, r, `unknown command "frobnicate"`)
	if strings.Contains(r.stderr, "did you mean") {
		t.Errorf("a suggestion for a word near no command: %s", r.stderr)
	}
}

func TestUnknownFlagSuggestsTheNearest(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ args, want []string }{
		{[]string{"run", "--poll-intreval", "2s"}, []string{"unknown flag --poll-intreval", "did you mean --poll-interval?"}},
		{[]string{"add", "t", "--queu", "q"}, []string{"unknown flag --queu", "did you mean --queue?"}},
		{[]string{"--schmea", "s", "migrate"}, []string{"unknown flag --schmea", "did you mean --schema?"}},
		{[]string{"run", "--once", "-J", "2"}, []string{"unknown flag -J"}},
	} {
		r := runCLI(context.Background(), nil, tt.args...)
		assertOneLineError(t, r, tt.want...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d", tt.args, r.code, exitUsage)
		}
	}
}

func TestHelpForUnknownCommandFails(t *testing.T) {
	t.Parallel()
	r := runCLI(context.Background(), nil, "help", "frobnicate")
	assertOneLineError(t, r, `"frobnicate"`)
}

func TestNoDatabaseSaysToSetDatabaseURLOrRunDev(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"migrate"}, {"add", "some_task"}, {"workers"}, {"cancel", "1"}} {
		r := runCLI(context.Background(), map[string]string{}, args...)
		assertOneLineError(t, r, "no database", "set DATABASE_URL", `"gworker dev"`)
		if r.code != exitError {
			t.Errorf("%v: exit %d, want %d", args, r.code, exitError)
		}
	}
}

func TestUnknownFlagIsNamed(t *testing.T) {
	t.Parallel()
	r := runCLI(context.Background(), nil, "migrate", "--frobnicate")
	assertOneLineError(t, r, "--frobnicate")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	r = runCLI(context.Background(), nil, "--frobnicate", "migrate")
	assertOneLineError(t, r, "--frobnicate")
}

func TestFlagsMayFollowArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args      []string
		wantPos   []string
		wantQueue string
	}{
		{[]string{"id", "{}", "--queue", "q"}, []string{"id", "{}"}, "q"},
		{[]string{"--queue=q", "id"}, []string{"id"}, "q"},
		{[]string{"id", "--queue", "q", "{}"}, []string{"id", "{}"}, "q"},
		{[]string{"--queue", "q", "--", "id", "--queue"}, []string{"id", "--queue"}, "q"},
		{[]string{"id", "--", "-1"}, []string{"id", "-1"}, ""},
	}
	for _, tt := range tests {
		var queue string
		fs := newFlagSet("add", &commonFlags{})
		fs.flag(&stringValue{p: &queue}, "NAME", "queue", "queue")
		pos, err := fs.parse(tt.args)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !slices.Equal(pos, tt.wantPos) || queue != tt.wantQueue {
			t.Errorf("%q: positional %q, queue %q; want %q, %q", tt.args, pos, queue, tt.wantPos, tt.wantQueue)
		}
	}
}

func TestDurationFlagNeedsAUnit(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"2s": "2s", "250ms": "250ms", "1m30s": "1m30s"} {
		var d time.Duration
		if err := (&durationValue{p: &d}).Set(in); err != nil || d.String() != want {
			t.Errorf("Set(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	r := runCLI(context.Background(), nil, "run", "--poll-interval", "500")
	assertOneLineError(t, r, `--poll-interval: "500" has no unit; write 500ms or 500s`)
	r = runCLI(context.Background(), nil, "sweep", "--threshold=30")
	assertOneLineError(t, r, `--threshold: "30" has no unit; write 30ms or 30s`)
	r = runCLI(context.Background(), nil, "run", "--grace-period", "soon")
	assertOneLineError(t, r, `--grace-period: "soon" is not a duration`, "2s")
}

func TestVersionPrintsModuleCommitAndGo(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := runCLI(context.Background(), nil, args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "gworker ") || !strings.HasPrefix(lines[1], "commit: ") ||
			lines[2] != "go: "+runtime.Version() || !strings.Contains(lines[3], "migration 20") {
			t.Errorf("%v printed:\n%s", args, r.stdout)
		}
	}
}

func TestErrorsFitOnOneLine(t *testing.T) {
	t.Parallel()
	got := oneLine("gworker: invalid a: x\ngworker: invalid b: y\nwrapped: gworker: z\n")
	if want := "invalid a: x; invalid b: y; wrapped: z"; got != want {
		t.Errorf("oneLine = %q, want %q", got, want)
	}
}
