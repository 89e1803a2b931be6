package admin

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/cronspec"
)

// Defaults of Options.
const (
	// DefaultRefreshInterval is how often the page refreshes itself.
	DefaultRefreshInterval = 5 * time.Second
	// MaxBodyBytes bounds the body of every write request.
	MaxBodyBytes = 256 << 10
)

// Options configures NewHandler.
type Options struct {
	// Auth decides who each request comes from; required. Use Basic,
	// Bearer or AuthFunc, or NoAuth to run without authentication on
	// purpose.
	Auth Authenticator
	// Prefix is the path the handler is mounted under, e.g. "/admin"; ""
	// means the root. Links on the page start with it. Requests may
	// arrive with the prefix (mux.Handle("/admin/", h)) or without it
	// (behind http.StripPrefix or a router that strips it).
	Prefix string
	// ReadOnly refuses every change, whatever the identity's role.
	ReadOnly bool
	// TrustedOrigins are origins ("https://ops.example.com") allowed to
	// post cross-origin, for a page reached through a proxy that changes
	// the host. Same-origin requests need nothing here.
	TrustedOrigins []string
	// StaleThreshold is how old a worker's heartbeat must be to show it as
	// stale; 0 means core.DefaultStaleThreshold. Use the workers' own.
	StaleThreshold time.Duration
	// Crontab is the workers' crontab (graphile-worker's format), if the
	// page should show when each entry fires next; "" shows only what the
	// database knows (last execution).
	Crontab string
	// RefreshInterval is how often the page updates itself while live
	// updates are on; 0 means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// Logger receives errors the page cannot show; nil means
	// slog.Default().
	Logger *slog.Logger
}

//go:embed assets
var assets embed.FS

// handler is the admin page and API.
type handler struct {
	u         *core.Utils
	opts      Options
	prefix    string
	mux       *http.ServeMux
	csrf      *http.CrossOriginProtection
	static    http.Handler
	pages     map[string]*template.Template
	log       *slog.Logger
	crontab   []cronspec.Entry
	threshold time.Duration
}

// NewHandler returns the admin page and its JSON API for the jobs u
// manages. See the package documentation for the API.
func NewHandler(u *core.Utils, opts Options) (http.Handler, error) {
	if u == nil {
		return nil, errors.New("admin: NewHandler needs a *core.Utils")
	}
	if opts.Auth == nil {
		return nil, errors.New("admin: Options.Auth is required: use admin.Basic, admin.Bearer or admin.AuthFunc, or admin.NoAuth to run without authentication")
	}
	if err := opts.Auth.check(); err != nil {
		return nil, err
	}
	prefix := strings.TrimRight(opts.Prefix, "/")
	if prefix != "" && (!strings.HasPrefix(prefix, "/") || strings.ContainsAny(prefix, "?#\"'<> \x00")) {
		return nil, fmt.Errorf("admin: Options.Prefix %q must be a path starting with /", opts.Prefix)
	}
	if opts.StaleThreshold < 0 {
		// Every workers view and sweep would fail on it; say so once, now.
		return nil, fmt.Errorf("admin: Options.StaleThreshold %v must not be negative (0 means core.DefaultStaleThreshold)", opts.StaleThreshold)
	}
	if opts.RefreshInterval < 0 {
		// The page would refresh back to back, a query storm per open tab.
		return nil, fmt.Errorf("admin: Options.RefreshInterval %v must not be negative (0 means DefaultRefreshInterval)", opts.RefreshInterval)
	}
	h := &handler{u: u, opts: opts, prefix: prefix, csrf: http.NewCrossOriginProtection(), log: opts.Logger, threshold: opts.StaleThreshold}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.threshold == 0 {
		h.threshold = core.DefaultStaleThreshold
	}
	if h.opts.RefreshInterval == 0 {
		h.opts.RefreshInterval = DefaultRefreshInterval
	}
	for _, o := range opts.TrustedOrigins {
		if err := h.csrf.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("admin: Options.TrustedOrigins: %w", err)
		}
	}
	if opts.Crontab != "" {
		entries, err := cronspec.Parse(opts.Crontab)
		if err != nil {
			return nil, fmt.Errorf("admin: Options.Crontab: %w", err)
		}
		h.crontab = entries
	}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, err
	}
	h.static = http.FileServerFS(static)
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}
	h.mux = http.NewServeMux()
	h.routes()
	return h, nil
}

type ctxKey struct{}

// identityFrom returns the request's identity, set by ServeHTTP.
func identityFrom(ctx context.Context) Identity {
	id, _ := ctx.Value(ctxKey{}).(Identity)
	return id
}

// securityHeaders are sent with every response. The policy allows the
// page's own stylesheet and script and nothing else: no inline script or
// style, no frames, no forms posting elsewhere.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	"X-Content-Type-Options":       "nosniff",
	"X-Frame-Options":              "DENY",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Permissions-Policy":           "camera=(), microphone=(), geolocation=(), payment=()",
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range securityHeaders {
		w.Header().Set(k, v)
	}
	if r.TLS != nil {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
	}
	// Accept the path with or without the prefix: with it when mounted
	// as mux.Handle("/admin/", h), without behind http.StripPrefix.
	p := r.URL.Path
	if h.prefix != "" {
		if p == h.prefix {
			http.Redirect(w, r, h.prefix+"/", http.StatusFound)
			return
		}
		if rest, ok := strings.CutPrefix(p, h.prefix+"/"); ok {
			p = "/" + rest
		}
	}
	if p == "" {
		p = "/"
	}
	if strings.HasPrefix(p, "/static/") {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = strings.TrimPrefix(p, "/static"), ""
		h.static.ServeHTTP(w, r2)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	api := strings.HasPrefix(p, "/api/")
	safe := r.Method == http.MethodGet || r.Method == http.MethodHead
	if !safe {
		// Before authentication: a forged request learns nothing, and the
		// login form (no identity yet) is covered too.
		if err := h.csrf.Check(r); err != nil {
			h.fail(w, r, api, http.StatusForbidden, "cross-origin request refused: changes must come from this page itself")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	}
	if _, bearer := h.opts.Auth.(bearerAuth); bearer && (p == "/login" || p == "/logout") {
		h.serveLogin(w, r, p)
		return
	}
	id, err := h.opts.Auth.authenticate(r)
	if err != nil {
		if _, bearer := h.opts.Auth.(bearerAuth); bearer && !api && safe {
			http.Redirect(w, r, h.prefix+"/login", http.StatusSeeOther)
			return
		}
		if c := h.opts.Auth.challenge(); c != "" {
			w.Header().Set("WWW-Authenticate", c)
		}
		h.fail(w, r, api, http.StatusUnauthorized, "authentication required")
		return
	}
	if !id.Role.valid() {
		h.fail(w, r, api, http.StatusForbidden, "this identity has no role that may use the admin page")
		return
	}
	if !safe && !h.canWrite(id) {
		msg := "viewers may not change anything"
		if h.opts.ReadOnly {
			msg = "the admin page is read-only"
		}
		h.fail(w, r, api, http.StatusForbidden, msg)
		return
	}
	if strings.ContainsRune(r.URL.RawQuery, 0) || strings.Contains(r.URL.RawQuery, "%00") {
		h.fail(w, r, api, http.StatusBadRequest, "the request contains a NUL character")
		return
	}
	r2 := r.Clone(context.WithValue(r.Context(), ctxKey{}, id))
	r2.URL.Path, r2.URL.RawPath = p, ""
	h.mux.ServeHTTP(w, r2)
}

func (h *handler) canWrite(id Identity) bool { return id.Role == RoleOperator && !h.opts.ReadOnly }

// fail answers an error: JSON for the API, a page otherwise.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, api bool, status int, msg string) {
	if api {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	h.errorPage(w, r, status, msg)
}
