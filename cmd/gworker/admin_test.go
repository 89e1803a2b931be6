package main

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/internal/testkit"
)

// startAdmin runs gworker admin in the background until the test ends and
// returns the URL it prints, and its stderr.
func (b *bundle) startAdmin(t *testing.T, environment map[string]string, args ...string) (string, *syncBuffer) {
	t.Helper()
	env := b.env()
	for k, v := range environment {
		env[k] = v
	}
	ctx, cancel := context.WithCancel(b.ctx)
	var stdout, stderr syncBuffer
	// done is closed when the command returned with code: both the wait
	// below and the cleanup read it.
	var code int
	done := make(chan struct{})
	go func() {
		code = run(ctx, append([]string{"admin", "--listen", "127.0.0.1:0"}, args...), &stdout, &stderr, func(k string) string { return env[k] })
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		if <-done; code != 0 {
			t.Errorf("gworker admin: exit %d; stderr: %s", code, stderr.String())
		}
	})
	re := regexp.MustCompile(`on (http://\S+)`)
	var url string
	testkit.EventuallyWithin(t, 30*time.Second, "gworker admin to listen", func() bool {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			url = strings.TrimSuffix(m[1], "/")
			return true
		}
		select {
		case <-done:
			t.Fatalf("gworker admin exited with %d: %s", code, stderr.String())
		default:
		}
		return false
	})
	return url, &stderr
}

func getStatus(t *testing.T, url string, auth func(*http.Request)) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != nil {
		auth(req)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestAdminGeneratesAPasswordWhenNoneIsSet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	url, stderr := b.startAdmin(t, nil, "--prefix", "/ops")
	m := regexp.MustCompile(`user "admin", password (\S+) \(generated`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no generated password printed: %s", stderr.String())
	}
	if !strings.HasSuffix(url, "/ops") {
		t.Fatalf("url %q lacks the prefix", url)
	}
	if code := getStatus(t, url+"/api/v1/stats", nil); code != http.StatusUnauthorized {
		t.Fatalf("without the password: %d", code)
	}
	if code := getStatus(t, url+"/api/v1/stats", func(r *http.Request) { r.SetBasicAuth("admin", m[1]) }); code != http.StatusOK {
		t.Fatalf("with the password: %d", code)
	}
}

func TestAdminTakesCredentialsFromTheEnvironment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	url, stderr := b.startAdmin(t, map[string]string{envAdminUser: "ops", envAdminPassword: "s3cret-enough"})
	if strings.Contains(stderr.String(), "generated") {
		t.Fatalf("a password was generated: %s", stderr.String())
	}
	if code := getStatus(t, url+"/api/v1/me", func(r *http.Request) { r.SetBasicAuth("ops", "s3cret-enough") }); code != http.StatusOK {
		t.Fatalf("basic: %d", code)
	}
	const token = "a-token-of-at-least-16-characters"
	url, _ = b.startAdmin(t, map[string]string{envAdminToken: token}, "--read-only")
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	if code := getStatus(t, url+"/api/v1/me", bearer); code != http.StatusOK {
		t.Fatalf("bearer: %d", code)
	}
	req, _ := http.NewRequest("POST", url+"/api/v1/jobs", strings.NewReader(`{"task":"t"}`))
	bearer(req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("a write to a --read-only admin: %d", res.StatusCode)
	}
}

func TestAdminRefusesNoAuthOffLoopback(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	r := b.cli(t, "admin", "--auth", "none", "--listen", "0.0.0.0:0")
	if r.code != exitUsage || !strings.Contains(r.stderr, "loopback") {
		t.Fatalf("--auth none on 0.0.0.0: exit %d, %s", r.code, r.stderr)
	}
	r = runCLI(b.ctx, map[string]string{envDatabaseURL: b.url, envSchema: b.schema, envAdminToken: "x", envAdminUser: "u"}, "admin")
	if r.code != exitUsage || !strings.Contains(r.stderr, "not both") {
		t.Fatalf("both kinds of credentials: exit %d, %s", r.code, r.stderr)
	}
	url, _ := b.startAdmin(t, nil, "--auth", "none")
	if code := getStatus(t, url+"/api/v1/stats", nil); code != http.StatusOK {
		t.Fatalf("--auth none on loopback: %d", code)
	}
}
