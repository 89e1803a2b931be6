package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readmeBlocks returns the fenced code blocks of the README's section
// whose heading is heading, in order, keyed by nothing but their language.
func readmeBlocks(t *testing.T, heading, lang string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", heading)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var blocks []string
	for {
		_, rest, ok := strings.Cut(section, "\n```"+lang+"\n")
		if !ok {
			return blocks
		}
		block, after, ok := strings.Cut(rest, "\n```\n")
		if !ok {
			t.Fatalf("README.md section %q: unterminated ```%s block", heading, lang)
		}
		blocks = append(blocks, block+"\n")
		section = after
	}
}

// The Go quick start is a whole main.go that compiles when pasted into a
// module that went get gworker, as the README says.
func TestReadmeQuickStartCompiles(t *testing.T) {
	t.Parallel()
	blocks := readmeBlocks(t, "## Go", "go")
	if len(blocks) != 1 || !strings.HasPrefix(blocks[0], "package main\n") {
		t.Fatalf("want one Go block starting with its package clause, got %d:\n%s", len(blocks), strings.Join(blocks, "\n---\n"))
	}
	if sh := readmeBlocks(t, "## Go", "sh"); len(sh) != 1 || !strings.Contains(sh[0], "go get github.com/gworker/gworker") {
		t.Errorf("the Go section does not show the go get line: %q", sh)
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	goMod := "module example.com/quickstart\n\ngo 1.24\n\nrequire github.com/gworker/gworker v0.0.0\n\n" +
		"replace github.com/gworker/gworker => " + repo + "\n"
	// The repository's go.sum covers every module the quick start can
	// reach, so the build needs no network.
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"go.mod": []byte(goMod), "go.sum": sum, "main.go": []byte(blocks[0])} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the README's example: %v", err)
	}
	cmd := exec.CommandContext(t.Context(), goTool, "build", "-o", os.DevNull, ".")
	cmd.Dir = dir
	// -mod=mod lets go add the requirements the replaced module brings.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOPROXY=off", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's main.go does not build: %v\n%s\n%s", err, out, blocks[0])
	}
}

// Every gworker command the README's command-line section runs exists.
func TestReadmeCommandLineUsesRealCommands(t *testing.T) {
	t.Parallel()
	known := map[string]bool{}
	for _, n := range commandNames() {
		known[n] = true
	}
	seen := 0
	for _, block := range readmeBlocks(t, "## The gworker command", "sh") {
		for _, line := range strings.Split(block, "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "#") {
				continue
			}
			for _, part := range strings.Split(line, "gworker ")[1:] {
				name := strings.Fields(part)[0]
				if strings.HasPrefix(name, "-") || strings.Contains(line, "go install") {
					continue
				}
				seen++
				if !known[name] {
					t.Errorf("README runs gworker %s, which is no command: %s", name, line)
				}
			}
		}
	}
	if seen == 0 {
		t.Error("found no gworker command in the README's command-line section")
	}
}
