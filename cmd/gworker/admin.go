package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gworker/gworker/admin"
	"github.com/gworker/gworker/core"
)

// Environment variables of gworker admin's credentials.
const (
	envAdminUser     = "GWORKER_ADMIN_USER"
	envAdminPassword = "GWORKER_ADMIN_PASSWORD"
	envAdminToken    = "GWORKER_ADMIN_TOKEN"
)

// defaultAdminListen is loopback: the page is reachable from elsewhere only
// when asked for.
const defaultAdminListen = "127.0.0.1:5678"

func adminCommand() *command {
	return &command{
		name:     "admin",
		synopsis: "[--listen ADDR] [--prefix PATH] [--read-only] [--auth basic|bearer|none]",
		summary:  "serve the admin web page and JSON API",
		help: `
Serves the admin page (counts, jobs, workers, cron, throughput, actions,
audit log) and its JSON API under PREFIX/api/v1/ until interrupted.

Credentials: $` + envAdminUser + ` and $` + envAdminPassword + ` (Basic authentication,
operator role), or $` + envAdminToken + ` (Bearer; browsers sign in with a form). With
neither, a password for the user "admin" is generated and printed once.
--auth none serves without authentication, and only on a loopback address.
--read-only refuses every change.`,
		setup: func(fs *flagSet) action {
			o := adminOptions{listen: defaultAdminListen}
			fs.flag(&stringValue{p: &o.listen}, "ADDR", "address to listen on (default: "+defaultAdminListen+")", "listen")
			fs.flag(&stringValue{p: &o.prefix}, "PATH", "path prefix of every page and endpoint, e.g. /admin (default: none)", "prefix")
			fs.flag(&boolValue{p: &o.readOnly}, "", "refuse every change", "read-only")
			fs.flag(&stringValue{p: &o.auth}, "MODE", "basic, bearer or none (default: from the environment, see above)", "auth")
			fs.flag(&durationValue{p: &o.stale}, "DURATION", fmt.Sprintf("a worker's heartbeat older than this shows as stale (default: %v)", core.DefaultStaleThreshold), "stale-threshold")
			fs.flag(&stringValue{p: &o.crontab}, "FILE", "the workers' crontab, to show when each entry fires next", "crontab")
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) > 0 {
					return usagef("admin takes no arguments, got %q", args[0])
				}
				return serveAdmin(ctx, e, fs.opts, o)
			}
		},
	}
}

type adminOptions struct {
	listen, prefix, auth, crontab string
	readOnly                      bool
	stale                         time.Duration
}

// adminAuth picks the authenticator from --auth and the environment, and
// says what it chose (printing a generated password once).
func adminAuth(e *env, o adminOptions) (admin.Authenticator, error) {
	user, password, token := e.getenv(envAdminUser), e.getenv(envAdminPassword), e.getenv(envAdminToken)
	mode := o.auth
	if mode == "" {
		switch {
		case token != "" && (user != "" || password != ""):
			return nil, usagef("set either $%s and $%s, or $%s, not both", envAdminUser, envAdminPassword, envAdminToken)
		case token != "":
			mode = "bearer"
		default:
			mode = "basic"
		}
	}
	switch mode {
	case "none":
		if !loopback(o.listen) {
			return nil, usagef("--auth none on %s would let anyone who reaches it change jobs; it is allowed only on a loopback address (127.0.0.1, ::1, localhost)", o.listen)
		}
		fmt.Fprintf(e.stderr, "gworker admin: no authentication (--auth none): anyone on this machine may act as an operator\n")
		return admin.NoAuth(admin.RoleOperator), nil
	case "bearer":
		if token == "" {
			return nil, usagef("--auth bearer needs $%s", envAdminToken)
		}
		return admin.Bearer(admin.BearerToken{Name: "token", Token: token, Role: admin.RoleOperator}), nil
	case "basic":
		switch {
		case user == "" && password == "":
			user, password = "admin", generatePassword()
			fmt.Fprintf(e.stderr, "gworker admin: user %q, password %s (generated; set $%s and $%s to choose them)\n",
				user, password, envAdminUser, envAdminPassword)
		case user == "" || password == "":
			return nil, usagef("set both $%s and $%s", envAdminUser, envAdminPassword)
		}
		return admin.Basic(admin.BasicUser{Name: user, Password: password, Role: admin.RoleOperator}), nil
	}
	return nil, usagef("--auth must be basic, bearer or none, not %q", mode)
}

func generatePassword() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// loopback says whether addr (host:port) listens on a loopback address only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func serveAdmin(ctx context.Context, e *env, common *commonFlags, o adminOptions) error {
	auth, err := adminAuth(e, o)
	if err != nil {
		return err
	}
	crontab := ""
	if o.crontab != "" {
		data, err := os.ReadFile(o.crontab)
		if err != nil {
			return fmt.Errorf("read the crontab: %w", err)
		}
		crontab = string(data)
	}
	u, closeDB, err := openUtils(ctx, e, common)
	if err != nil {
		return err
	}
	defer closeDB()
	prefix := strings.TrimRight(o.prefix, "/")
	if prefix != "" && !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	h, err := admin.NewHandler(u, admin.Options{Auth: auth, Prefix: prefix, ReadOnly: o.readOnly, StaleThreshold: o.stale,
		Crontab: crontab, Logger: common.logger(e, 0)})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", h)
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	ro := ""
	if o.readOnly {
		ro = " (read-only)"
	}
	fmt.Fprintf(e.stdout, "gworker admin: serving schema %q on http://%s%s/%s\n", u.Schema(), ln.Addr(), prefix, ro)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
