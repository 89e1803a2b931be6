package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/admin"
	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Credentials of the tests' Basic users.
const (
	operatorUser, operatorPassword = "olga", "operator-password"
	viewerUser, viewerPassword     = "victor", "viewer-password"
)

func basicUsers() admin.Authenticator {
	return admin.Basic(
		admin.BasicUser{Name: operatorUser, Password: operatorPassword, Role: admin.RoleOperator},
		admin.BasicUser{Name: viewerUser, Password: viewerPassword, Role: admin.RoleViewer},
	)
}

// bundle is a test's admin server on a schema of its own.
type bundle struct {
	ctx    context.Context
	db     *pgxdriver.Driver
	utils  *core.Utils
	schema string
	srv    *httptest.Server
	// base is the server's URL with the prefix, without a trailing slash.
	base string
}

func setup(t *testing.T, opts admin.Options) *bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	schema := pgtest.Schema(t)
	db := pgxdriver.New(pgtest.Pool(t))
	u, err := core.NewUtils(db, core.UtilsOptions{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if opts.Auth == nil {
		opts.Auth = basicUsers()
	}
	h, err := admin.NewHandler(u, opts)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	mux := http.NewServeMux()
	if opts.Prefix != "" {
		mux.Handle(opts.Prefix+"/", h)
	} else {
		mux.Handle("/", h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &bundle{ctx: ctx, db: db, utils: u, schema: schema, srv: srv, base: srv.URL + opts.Prefix}
}

// servedBy returns a copy of b whose requests go to a new server (the
// test's Basic users, no prefix) over u instead of b.utils; b.utils stays
// the copy's utils, for the test's own reads and writes.
func (b *bundle) servedBy(t *testing.T, u *core.Utils) *bundle {
	t.Helper()
	h, err := admin.NewHandler(u, admin.Options{Auth: basicUsers()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := *b
	c.srv, c.base = srv, srv.URL
	return &c
}

// response is an answer, read whole.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

// do sends a request; auth is applied to it (nil: none).
func (b *bundle) do(t *testing.T, method, path, body string, auth func(*http.Request)) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(b.ctx, method, b.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		ct := "application/json"
		if !strings.HasPrefix(body, "{") && !strings.HasPrefix(body, "[") {
			ct = "application/x-www-form-urlencoded"
		}
		req.Header.Set("Content-Type", ct)
	}
	if auth != nil {
		auth(req)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(data)}
}

func asOperator(r *http.Request) { r.SetBasicAuth(operatorUser, operatorPassword) }
func asViewer(r *http.Request)   { r.SetBasicAuth(viewerUser, viewerPassword) }

// crossSite makes a request look like a browser's from another site.
func crossSite(auth func(*http.Request)) func(*http.Request) {
	return func(r *http.Request) {
		auth(r)
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		r.Header.Set("Origin", "https://evil.example")
	}
}

func (b *bundle) addJob(t *testing.T, task string, payload any, spec *core.JobSpec) *core.Job {
	t.Helper()
	j, err := b.utils.AddRawJob(b.ctx, task, payload, spec)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// registerWorker plants w in the schema's worker registry.
func (b *bundle) registerWorker(t *testing.T, w testkit.RegisteredWorker) {
	t.Helper()
	testkit.RegisterWorker(t, b.ctx, b.db, b.schema, w)
}

// failJob makes a job permanently failed with message as its last error.
func (b *bundle) failJob(t *testing.T, id int64, message string) {
	t.Helper()
	if _, err := b.utils.PermanentlyFailJobs(b.ctx, []int64{id}, message); err != nil {
		t.Fatal(err)
	}
}

func want(t *testing.T, what string, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body: %s", what, r.status, status, r.body)
	}
}
