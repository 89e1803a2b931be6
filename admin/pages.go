package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gworker/gworker/core"
)

func (h *handler) pageRoutes() {
	m := h.mux
	m.HandleFunc("GET /{$}", h.overviewPage)
	m.HandleFunc("GET /jobs", h.jobsPage)
	m.HandleFunc("GET /jobs/new", h.addPage)
	m.HandleFunc("POST /jobs/new", h.addPost)
	m.HandleFunc("GET /jobs/confirm", h.confirmPage)
	m.HandleFunc("POST /jobs/actions", h.bulkPost)
	m.HandleFunc("GET /jobs/{id}", h.jobPage)
	m.HandleFunc("POST /jobs/{id}/{action}", h.jobPost)
	m.HandleFunc("GET /queues", h.simplePage("queues", "Queues", func(ctx context.Context) (any, error) { return h.u.ListQueues(ctx) }))
	m.HandleFunc("GET /tasks", h.simplePage("tasks", "Tasks", func(ctx context.Context) (any, error) { return h.u.ListTasks(ctx) }))
	m.HandleFunc("GET /workers", h.simplePage("workers", "Workers", func(ctx context.Context) (any, error) { return h.workers(ctx) }))
	m.HandleFunc("GET /cron", h.simplePage("cron", "Cron", func(ctx context.Context) (any, error) { return h.cron(ctx) }))
	m.HandleFunc("GET /audit", h.simplePage("audit", "Audit log", func(ctx context.Context) (any, error) { return h.u.ListAudit(ctx, 200) }))
	m.HandleFunc("GET /maintenance", h.maintenancePage)
	m.HandleFunc("POST /maintenance/{op}", h.maintenancePost)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, http.StatusNotFound, "There is no page here.")
	})
}

// page is what every template gets.
type page struct {
	Title    string
	Nav      string
	Prefix   string
	Identity Identity
	CanWrite bool
	ReadOnly bool
	// Refresh is the live update interval in milliseconds.
	Refresh int64
	Notice  string
	Error   string
	Data    any
}

var funcs = template.FuncMap{
	"ts": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("2006-01-02 15:04:05Z")
		case *time.Time:
			if v != nil {
				return v.UTC().Format("2006-01-02 15:04:05Z")
			}
		}
		return "—"
	},
	"rel":    relTime,
	"dur":    func(d time.Duration) string { return d.Round(time.Second).String() },
	"pretty": prettyJSON,
	"trunc": func(s string, n int) string {
		if r := []rune(s); len(r) > n {
			return string(r[:n-1]) + "…"
		}
		return s
	},
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"count": func(n int64, exact bool) string {
		if exact {
			return strconv.FormatInt(n, 10)
		}
		return "~" + strconv.FormatInt(n, 10)
	},
	"states":   func() []core.JobState { return core.JobStates },
	"navItems": func() [][3]string { return navItems },
	"get":      func(m core.StateCounts, s core.JobState) int64 { return m[s] },
	"state":    func(j *core.Job) core.JobState { return j.State(time.Now()) },
	"join":     strings.Join,
	"actions":  func() []string { return jobActions },
	"ids": func(ids []int64) string {
		parts := make([]string, 0, len(ids))
		for i, id := range ids {
			if i == 20 {
				parts = append(parts, fmt.Sprintf("… (%d in all)", len(ids)))
				break
			}
			parts = append(parts, strconv.FormatInt(id, 10))
		}
		return strings.Join(parts, ", ")
	},
}

func relTime(t time.Time) string {
	d := time.Until(t).Round(time.Second)
	switch {
	case d > 0:
		return "in " + d.String()
	case d < 0:
		return (-d).String() + " ago"
	}
	return "now"
}

func prettyJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// navItems are the header's links: the page's name, its path, its label.
var navItems = [][3]string{{"overview", "/", "Overview"}, {"jobs", "/jobs", "Jobs"}, {"queues", "/queues", "Queues"},
	{"tasks", "/tasks", "Tasks"}, {"workers", "/workers", "Workers"}, {"cron", "/cron", "Cron"},
	{"audit", "/audit", "Audit"}, {"maintenance", "/maintenance", "Maintenance"}}

// parsePages parses each page with the layout.
func parsePages() (map[string]*template.Template, error) {
	files, err := fs.Glob(assets, "assets/templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "assets/templates/layout.html", f)
		if err != nil {
			return nil, fmt.Errorf("admin: parse %s: %w", f, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes a page. Rendering into a buffer first means a template
// error becomes a clean 500, not half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	id := identityFrom(r.Context())
	p.Prefix, p.Identity, p.CanWrite, p.ReadOnly = h.prefix, id, h.canWrite(id), h.opts.ReadOnly
	p.Refresh = h.opts.RefreshInterval.Milliseconds()
	if p.Nav == "" {
		p.Nav = name
	}
	var b bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&b, "layout", p); err != nil {
		h.log.Error("gworker admin: render page", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (h *handler) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.render(w, r, status, "error", page{Title: http.StatusText(status), Nav: "-", Error: msg})
}

// pageError answers err on a page with the status its kind calls for.
func (h *handler) pageError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := h.classify(err)
	h.errorPage(w, r, status, msg)
}

func (h *handler) simplePage(name, title string, load func(context.Context) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		data, err := load(r.Context())
		if err != nil {
			h.pageError(w, r, err)
			return
		}
		h.render(w, r, http.StatusOK, name, page{Title: title, Data: data})
	}
}

type overviewData struct {
	Stats    core.JobStats
	ByTask   chart
	ByWorker chart
	Workers  int
	Stale    int
	Audit    []core.AuditEntry
	Window   string
}

func (h *handler) overviewPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var d overviewData
	var err error
	if d.Stats, err = h.u.JobStats(ctx, core.JobStatsOptions{}); err != nil {
		h.pageError(w, r, err)
		return
	}
	tp, err := h.u.Throughput(ctx, 0)
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	d.ByTask, d.ByWorker = throughputCharts(tp)
	ws, err := h.u.ListActiveWorkers(ctx, core.ListWorkersOptions{StaleThreshold: h.threshold})
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	for _, x := range ws {
		if x.Stale {
			d.Stale++
		} else {
			d.Workers++
		}
	}
	if d.Audit, err = h.u.ListAudit(ctx, 5); err != nil {
		h.pageError(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "overview", page{Title: "Overview", Data: d})
}

type jobsData struct {
	Filter   filterJSON
	Query    string // the filter as a query string
	QueryURL template.URL
	Jobs     []*core.Job
	Next     string
	Prev     string
	Oldest   bool
	Limit    int
	Matching string // "?action=...": the confirm link's base
}

func (h *handler) jobsPage(w http.ResponseWriter, r *http.Request) {
	o, f, err := listOptions(r)
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	pg, err := h.u.ListJobs(r.Context(), o)
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	q := f.query()
	if o.OldestFirst {
		q.Set("order", "oldest")
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	// QueryURL is url.Values' own encoding, safe in an href as it is.
	d := jobsData{Filter: f, Query: q.Encode(), QueryURL: template.URL(q.Encode()), Jobs: pg.Jobs, Next: pg.Next, Prev: pg.Prev, Oldest: o.OldestFirst, Limit: o.Limit}
	h.render(w, r, http.StatusOK, "jobs", page{Title: "Jobs", Notice: notice(r.URL.Query()), Data: d})
}

// notice turns the result of a change, carried by the redirect after it,
// into a sentence. Only known words and numbers are shown, so that a
// crafted link cannot put text of its choosing on the page.
func notice(q url.Values) string {
	done := q.Get("done")
	verb := map[string]string{"retry": "Retried", "run-now": "Set to run now", "reschedule": "Rescheduled",
		"complete": "Completed", "fail": "Failed", "remove": "Removed", "cancel": "Cancelled", "add": "Added"}[done]
	if verb == "" {
		return ""
	}
	n, err := strconv.Atoi(q.Get("n"))
	if err != nil || n < 0 {
		return ""
	}
	if n == 0 {
		return verb + ": no job changed (a worker holds it, or it is gone or already in that state)."
	}
	return fmt.Sprintf("%s %d job(s).", verb, n)
}

type jobData struct {
	ID   int64
	Job  *core.Job
	Gone bool
}

func (h *handler) jobPage(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r.PathValue("id"))
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	j, err := h.u.GetJob(r.Context(), id)
	title := fmt.Sprintf("Job %d", id)
	switch {
	case errors.Is(err, core.ErrJobNotFound):
		// A 404 with the page around it: live updates show a job that
		// completed while watched as gone.
		h.render(w, r, http.StatusNotFound, "job", page{Title: title, Nav: "jobs", Notice: notice(r.URL.Query()), Data: jobData{ID: id, Gone: true}})
		return
	case err != nil:
		h.pageError(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "job", page{Title: title, Nav: "jobs", Notice: notice(r.URL.Query()), Data: jobData{ID: id, Job: j}})
}

// formAction reads the fields of an action form.
func formAction(r *http.Request) (actionRequest, error) {
	req := actionRequest{Reason: r.PostForm.Get("reason"), RunAt: r.PostForm.Get("run_at")}
	for _, f := range []struct {
		name string
		p    **int
	}{{"priority", &req.Priority}, {"max_attempts", &req.MaxAttempts}} {
		if s := strings.TrimSpace(r.PostForm.Get(f.name)); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return req, badInput("%s must be a whole number", f.name)
			}
			*f.p = &n
		}
	}
	return req, nil
}

func (h *handler) parseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badInput("the form could not be read: %v", err)
	}
	for k, vs := range r.PostForm {
		if err := noNUL(k, vs...); err != nil {
			return err
		}
	}
	return nil
}

func (h *handler) jobPost(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r.PathValue("id"))
	if err == nil {
		err = h.parseForm(r)
	}
	var req actionRequest
	if err == nil {
		req, err = formAction(r)
	}
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	req.IDs = []int64{id}
	name := r.PathValue("action")
	res, err := h.runAction(r.Context(), name, req)
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("%s/jobs/%d?done=%s&n=%d", h.prefix, id, url.QueryEscape(name), res.Changed), http.StatusSeeOther)
}

type confirmData struct {
	Action string
	Filter filterJSON
	Query  string
	Fields url.Values // the filter as hidden fields
	// QueryURL is the filter as url.Values encodes it, safe in an href.
	QueryURL template.URL
	Preview  core.ActionResult
	Result   *core.ActionResult
}

// confirmPage previews an action on every job matching a filter: how many
// match now, how many a worker holds; and asks to confirm.
func (h *handler) confirmPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("action")
	f, _ := filterFromQuery(q)
	preview, err := h.runAction(r.Context(), name, actionRequest{Filter: &f, DryRun: true, RunAt: "0s"})
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	d := confirmData{Action: name, Filter: f, Query: f.query().Encode(), QueryURL: template.URL(f.query().Encode()), Fields: f.query(), Preview: preview}
	h.render(w, r, http.StatusOK, "confirm", page{Title: "Confirm " + name, Nav: "jobs", Data: d})
}

// bulkPost runs an action on the selected jobs (scope=selected, the id
// fields) or on the filter (scope=filter, confirmed on the confirm page).
func (h *handler) bulkPost(w http.ResponseWriter, r *http.Request) {
	if err := h.parseForm(r); err != nil {
		h.pageError(w, r, err)
		return
	}
	req, err := formAction(r)
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	name := r.PostForm.Get("action")
	f, _ := filterFromQuery(r.PostForm)
	switch r.PostForm.Get("scope") {
	case "filter":
		if r.PostForm.Get("confirm") != "yes" {
			h.pageError(w, r, badInput("an action on every matching job must be confirmed"))
			return
		}
		req.Filter, req.Confirm = &f, true
	default:
		req.IDs = []int64{}
		for _, s := range r.PostForm["id"] {
			id, err := parseID(s)
			if err != nil {
				h.pageError(w, r, err)
				return
			}
			req.IDs = append(req.IDs, id)
		}
		if len(req.IDs) == 0 {
			h.pageError(w, r, badInput("no job selected: tick the jobs to act on"))
			return
		}
	}
	res, err := h.runAction(r.Context(), name, req)
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	d := confirmData{Action: name, Filter: f, Query: f.query().Encode(), QueryURL: template.URL(f.query().Encode()), Result: &res}
	h.render(w, r, http.StatusOK, "confirm", page{Title: "Done: " + name, Nav: "jobs", Data: d})
}

func (h *handler) addPage(w http.ResponseWriter, r *http.Request) {
	if !h.canWrite(identityFrom(r.Context())) {
		h.errorPage(w, r, http.StatusForbidden, "viewers may not add jobs")
		return
	}
	h.render(w, r, http.StatusOK, "add", page{Title: "Add a job", Nav: "jobs", Data: addRequest{Payload: json.RawMessage("{}")}})
}

func (h *handler) addPost(w http.ResponseWriter, r *http.Request) {
	if err := h.parseForm(r); err != nil {
		h.pageError(w, r, err)
		return
	}
	pf := r.PostForm
	req := addRequest{Task: strings.TrimSpace(pf.Get("task")), Payload: json.RawMessage(pf.Get("payload")), Queue: pf.Get("queue"),
		RunAt: pf.Get("run_at"), Key: pf.Get("key"), KeyMode: pf.Get("key_mode")}
	var err error
	num := func(name string, p *int) {
		if s := strings.TrimSpace(pf.Get(name)); s != "" && err == nil {
			if *p, err = strconv.Atoi(s); err != nil {
				err = badInput("%s must be a whole number", name)
			}
		}
	}
	num("max_attempts", &req.MaxAttempts)
	num("priority", &req.Priority)
	for _, fl := range strings.Split(pf.Get("flags"), ",") {
		if fl = strings.TrimSpace(fl); fl != "" {
			req.Flags = append(req.Flags, fl)
		}
	}
	var job *core.Job
	if err == nil {
		job, err = h.addJob(r.Context(), req)
	}
	if err != nil {
		status, msg := h.classify(err)
		h.render(w, r, status, "add", page{Title: "Add a job", Nav: "jobs", Error: msg, Data: req})
		return
	}
	http.Redirect(w, r, fmt.Sprintf("%s/jobs/%d?done=add&n=1", h.prefix, job.ID), http.StatusSeeOther)
}

type maintenanceData struct {
	Op     string
	Result any
}

func (h *handler) maintenancePage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "maintenance", page{Title: "Maintenance", Data: maintenanceData{}})
}

func (h *handler) maintenancePost(w http.ResponseWriter, r *http.Request) {
	if err := h.parseForm(r); err != nil {
		h.pageError(w, r, err)
		return
	}
	op := r.PathValue("op")
	req := maintenanceRequest{Tasks: r.PostForm["task"], DryRun: r.PostForm.Get("dry_run") != ""}
	req.WorkerIDs = strings.FieldsFunc(r.PostForm.Get("worker_ids"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' })
	out, err := h.maintain(r.Context(), op, req)
	if err != nil {
		status, msg := h.classify(err)
		h.render(w, r, status, "maintenance", page{Title: "Maintenance", Error: msg, Data: maintenanceData{}})
		return
	}
	raw, _ := json.MarshalIndent(out, "", "  ")
	h.render(w, r, http.StatusOK, "maintenance", page{Title: "Maintenance", Data: maintenanceData{Op: op, Result: string(raw)}})
}

// serveLogin is the browser's way in with Bearer authentication: a form
// for the token, which goes into an HttpOnly cookie.
func (h *handler) serveLogin(w http.ResponseWriter, r *http.Request, p string) {
	cookiePath := h.prefix + "/"
	secure := r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
	switch {
	case p == "/logout" && r.Method == http.MethodPost:
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: "", Path: cookiePath, MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, h.prefix+"/login", http.StatusSeeOther)
	case p == "/login" && r.Method == http.MethodGet:
		h.render(w, r, http.StatusOK, "login", page{Title: "Sign in", Nav: "-"})
	case p == "/login" && r.Method == http.MethodPost:
		token := ""
		if err := r.ParseForm(); err == nil {
			token = r.PostForm.Get("token")
		}
		if _, err := h.opts.Auth.(bearerAuth).match(token); err != nil || token == "" {
			h.render(w, r, http.StatusUnauthorized, "login", page{Title: "Sign in", Nav: "-", Error: "That token is not valid."})
			return
		}
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: token, Path: cookiePath, HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, h.prefix+"/", http.StatusSeeOther)
	default:
		h.errorPage(w, r, http.StatusMethodNotAllowed, "method not allowed")
	}
}
