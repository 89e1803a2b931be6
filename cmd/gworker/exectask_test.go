package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTaskIdentifierIsPathWithoutExtension(t *testing.T) {
	t.Parallel()
	for rel, want := range map[string]string{
		"send_email.sh":     "send_email",
		"a/b/c.sh":          "a/b/c",
		"plain":             "plain",
		"archive.tar.gz":    "archive.tar",
		"dir.d/run":         "dir.d/run",
		".hidden":           ".hidden",
		"sub/.hidden.sh":    "sub/.hidden",
		"with space/x y.py": "with space/x y",
	} {
		if got := taskIdentifier(filepath.FromSlash(rel)); got != want {
			t.Errorf("taskIdentifier(%q) = %q, want %q", rel, got, want)
		}
	}
}

func TestLoadExecTasksFindsExecutablesOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeScript(t, dir, "top.sh", "exit 0\n")
	writeScript(t, dir, "x/y/deep.py", "exit 0\n")
	if err := os.WriteFile(filepath.Join(dir, "x", "data.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "top.sh"), filepath.Join(dir, "x", "alias.sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "broken.sh")); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tasks, err := loadExecTasks(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, task := range tasks {
		ids = append(ids, task.identifier)
		if !filepath.IsAbs(task.path) {
			t.Errorf("task %s has a relative path %s", task.identifier, task.path)
		}
	}
	if got, want := strings.Join(ids, " "), "top x/alias x/y/deep"; got != want {
		t.Errorf("identifiers %q, want %q", got, want)
	}
	if !strings.Contains(logs.String(), "non-executable") || !strings.Contains(logs.String(), "data.json") {
		t.Errorf("the non-executable file was not logged at debug level:\n%s", logs.String())
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	t.Parallel()
	tb := &tailBuffer{max: 8}
	tb.Write([]byte("abc"))
	if got := tb.String(); got != "abc" {
		t.Errorf("short: %q", got)
	}
	tb.Write([]byte("defghij\n"))
	if got := tb.String(); got != "…defghij" {
		t.Errorf("overflow: %q, want …defghij", got)
	}
	tb = &tailBuffer{max: 2}
	tb.Write([]byte("xxxxxxxxxé!")) // é is two bytes; the cut lands inside it
	if got := tb.String(); got != "…!" {
		t.Errorf("cut inside a rune: %q", got)
	}
	tb = &tailBuffer{max: 64}
	tb.Write([]byte("a\x00b\xffc"))
	if got := tb.String(); got != "ab\uFFFDc" {
		t.Errorf("NUL and invalid UTF-8: %q", got)
	}
}

func TestLineLoggerLogsLines(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	l := &lineLogger{log: slog.New(slog.NewTextHandler(&logs, nil)), msg: "task stdout"}
	l.Write([]byte("one\ntw"))
	l.Write([]byte("o\r\nthree"))
	l.flush()
	got := logs.String()
	for _, want := range []string{"line=one\n", "line=two\n", "line=three\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("logs lack %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n"); n != 3 {
		t.Errorf("%d records, want 3:\n%s", n, got)
	}
}
