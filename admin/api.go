package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gworker/gworker/core"
)

func (h *handler) routes() {
	m := h.mux
	// JSON API; documented in doc.go.
	m.HandleFunc("GET /api/v1/me", h.apiMe)
	m.HandleFunc("GET /api/v1/stats", h.apiStats)
	m.HandleFunc("GET /api/v1/jobs", h.apiJobs)
	m.HandleFunc("POST /api/v1/jobs", h.apiAddJob)
	m.HandleFunc("GET /api/v1/jobs/{id}", h.apiJob)
	m.HandleFunc("POST /api/v1/jobs/{id}/{action}", h.apiJobAction)
	m.HandleFunc("POST /api/v1/jobs/actions/{action}", h.apiBulkAction)
	m.HandleFunc("GET /api/v1/queues", h.apiQueues)
	m.HandleFunc("GET /api/v1/tasks", h.apiTasks)
	m.HandleFunc("GET /api/v1/workers", h.apiWorkers)
	m.HandleFunc("GET /api/v1/cron", h.apiCron)
	m.HandleFunc("GET /api/v1/throughput", h.apiThroughput)
	m.HandleFunc("GET /api/v1/audit", h.apiAudit)
	m.HandleFunc("POST /api/v1/maintenance/{op}", h.apiMaintenance)
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	h.pageRoutes()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	// The encoder escapes <, > and & in strings, so that no browser can
	// take a response for HTML.
	_ = json.NewEncoder(w).Encode(v)
}

// apiError answers err with the status its kind calls for. Database
// errors are logged, not shown: they may name tables and settings.
func (h *handler) apiError(w http.ResponseWriter, err error) {
	status, msg := h.classify(err)
	writeJSON(w, status, map[string]string{"error": msg})
}

func (h *handler) classify(err error) (int, string) {
	var ie *inputError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ie):
		return http.StatusBadRequest, ie.msg
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit)
	case errors.Is(err, core.ErrJobNotFound):
		return http.StatusNotFound, "no such job"
	case errors.Is(err, core.ErrInvalidInput):
		return http.StatusBadRequest, strings.TrimPrefix(err.Error(), "gworker: ")
	}
	h.log.Error("gworker admin: request failed", "error", err)
	return http.StatusInternalServerError, "internal error; the server's log has the details"
}

// readJSON decodes a bounded body (ServeHTTP caps it) into v, refusing
// unknown fields so that a typo is not silently ignored.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return nil // an empty body: the defaults
		}
		return badInput("the body is not the JSON expected: %v", err)
	}
	return nil
}

func (h *handler) apiMe(w http.ResponseWriter, r *http.Request) {
	id := identityFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{"name": id.Name, "role": id.Role, "read_only": h.opts.ReadOnly, "can_write": h.canWrite(id)})
}

type statsJSON struct {
	Exact   bool                        `json:"exact"`
	Total   int64                       `json:"total"`
	ByState core.StateCounts            `json:"by_state"`
	ByTask  map[string]core.StateCounts `json:"by_task"`
	ByQueue map[string]core.StateCounts `json:"by_queue"`
}

func (h *handler) apiStats(w http.ResponseWriter, r *http.Request) {
	st, err := h.u.JobStats(r.Context(), core.JobStatsOptions{})
	if err != nil {
		h.apiError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, statsJSON{st.Exact, st.Total, st.ByState, st.ByTask, st.ByQueue})
}

// listOptions reads the listing parameters of a query string.
func listOptions(r *http.Request) (core.ListJobsOptions, filterJSON, error) {
	q := r.URL.Query()
	f, err := filterFromQuery(q)
	if err != nil {
		return core.ListJobsOptions{}, f, err
	}
	cf, err := f.toCore()
	if err != nil {
		return core.ListJobsOptions{}, f, err
	}
	o := core.ListJobsOptions{Filter: cf, After: q.Get("after"), Before: q.Get("before"), OldestFirst: q.Get("order") == "oldest"}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > core.MaxPageSize {
			return o, f, badInput("limit must be between 1 and %d", core.MaxPageSize)
		}
		o.Limit = n
	}
	for _, c := range []string{o.After, o.Before} {
		if _, err := strconv.ParseInt(c, 10, 64); c != "" && err != nil {
			return o, f, badInput("%q is not a cursor", c)
		}
	}
	return o, f, nil
}

func (h *handler) apiJobs(w http.ResponseWriter, r *http.Request) {
	o, _, err := listOptions(r)
	if err != nil {
		h.apiError(w, err)
		return
	}
	page, err := h.u.ListJobs(r.Context(), o)
	if err != nil {
		h.apiError(w, err)
		return
	}
	jobs := page.Jobs
	if jobs == nil {
		jobs = []*core.Job{}
	}
	// Each job in core's one encoding (core.Job.MarshalJSON), as gworker
	// jobs --json prints it.
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs, "next": page.Next, "prev": page.Prev})
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func (h *handler) apiJob(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r.PathValue("id"))
	if err != nil {
		h.apiError(w, err)
		return
	}
	j, err := h.u.GetJob(r.Context(), id)
	if err != nil {
		h.apiError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// actionRequest is the body of the job actions.
type actionRequest struct {
	// IDs and Filter select the jobs (bulk actions); a per-job action
	// selects its own.
	IDs    []int64     `json:"ids,omitempty"`
	Filter *filterJSON `json:"filter,omitempty"`
	// DryRun counts the jobs the action would change.
	DryRun bool `json:"dry_run,omitempty"`
	// Confirm must be true for an action on a filter, so that a client
	// that forgot the filter does not change every job.
	Confirm bool `json:"confirm,omitempty"`
	// Reason is fail's and cancel's last_error.
	Reason string `json:"reason,omitempty"`
	// RunAt, Priority and MaxAttempts are reschedule's changes; RunAt is
	// RFC 3339 or a duration from now ("10m").
	RunAt       string `json:"run_at,omitempty"`
	Priority    *int   `json:"priority,omitempty"`
	MaxAttempts *int   `json:"max_attempts,omitempty"`
}

// jobActions are the actions on jobs, by the name of their endpoint.
var jobActions = []string{"retry", "run-now", "reschedule", "complete", "fail", "remove", "cancel"}

// runAction runs action name on the jobs req selects, and records it in
// the audit log unless it is a dry run.
func (h *handler) runAction(ctx context.Context, name string, req actionRequest) (core.ActionResult, error) {
	if !slices.Contains(jobActions, name) {
		return core.ActionResult{}, badInput("unknown action %q; the actions are %s", name, strings.Join(jobActions, ", "))
	}
	if err := noNUL("reason", req.Reason, req.RunAt); err != nil {
		return core.ActionResult{}, err
	}
	sel := core.JobSelection{IDs: req.IDs, DryRun: req.DryRun}
	if req.Filter != nil {
		cf, err := req.Filter.toCore()
		if err != nil {
			return core.ActionResult{}, err
		}
		sel.Filter = &cf
		if !req.DryRun && !req.Confirm && req.IDs == nil {
			return core.ActionResult{}, badInput("an action on a filter needs \"confirm\": true (try \"dry_run\": true first)")
		}
	}
	if sel.IDs == nil && sel.Filter == nil {
		return core.ActionResult{}, badInput("select jobs with \"ids\" or \"filter\"")
	}
	var (
		res core.ActionResult
		err error
	)
	switch name {
	case "retry":
		res, err = h.u.RetryJobs(ctx, sel)
	case "run-now":
		res, err = h.u.RunNowMatching(ctx, sel)
	case "reschedule":
		var spec core.RescheduleSpec
		if spec, err = rescheduleSpec(req); err == nil {
			res, err = h.u.RescheduleMatching(ctx, sel, spec)
		}
	case "complete":
		res, err = h.u.CompleteMatching(ctx, sel)
	case "fail":
		res, err = h.u.FailMatching(ctx, sel, req.Reason)
	case "remove":
		res, err = h.u.RemoveMatching(ctx, sel)
	case "cancel":
		res, err = h.u.CancelMatching(ctx, sel, req.Reason)
	}
	if req.DryRun {
		return res, err
	}
	var inErr *inputError
	if errors.As(err, &inErr) || errors.Is(err, core.ErrInvalidInput) {
		return res, err // nothing was attempted
	}
	h.audit(ctx, name, req, res, err)
	return res, err
}

func rescheduleSpec(req actionRequest) (core.RescheduleSpec, error) {
	spec := core.RescheduleSpec{Priority: req.Priority, MaxAttempts: req.MaxAttempts}
	if req.RunAt != "" {
		t, err := parseRunAt(req.RunAt, time.Now())
		if err != nil {
			return spec, err
		}
		spec.RunAt = &t
	}
	if spec.RunAt == nil && spec.Priority == nil && spec.MaxAttempts == nil {
		return spec, badInput("reschedule needs run_at, priority or max_attempts")
	}
	return spec, nil
}

// parseRunAt reads an RFC 3339 time, or a duration from now ("10m",
// "+1h30m").
func parseRunAt(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "+")); err == nil {
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	// What an <input type="datetime-local"> sends, taken as UTC.
	if t, err := time.Parse("2006-01-02T15:04", s); err == nil {
		return t, nil
	}
	return time.Time{}, badInput("run_at %s is neither an RFC 3339 time (2030-01-02T15:04:05Z) nor a duration from now (10m)", strconv.Quote(short(s)))
}

func short(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:57]) + "..."
	}
	return s
}

// addFields maps core's field names to the add request's.
var addFields = map[string]string{
	"identifier":          "task",
	"payload":             "payload",
	"JobSpec.QueueName":   "queue",
	"JobSpec.MaxAttempts": "max_attempts",
	"JobSpec.Priority":    "priority",
	"JobSpec.JobKey":      "key",
	"JobSpec.JobKeyMode":  "key_mode",
}

// addInputError says what core refused in the add request's own terms.
func addInputError(err error) string {
	var ve *core.ValidationError
	if !errors.As(err, &ve) {
		return strings.TrimPrefix(err.Error(), "gworker: ")
	}
	name, ok := addFields[ve.Field]
	if strings.HasPrefix(ve.Field, "JobSpec.Flags[") {
		name, ok = "flags", true
	}
	if !ok {
		name = ve.Field
	}
	if ve.Value == nil {
		return fmt.Sprintf("invalid %s: %s", name, ve.Reason)
	}
	return fmt.Sprintf("invalid %s %q: %s", name, fmt.Sprint(ve.Value), ve.Reason)
}

// audit records a change in the audit log. A failure to record it is
// logged with the whole entry, not returned: the change is made, and an
// error would make the operator, or a client's retry, make it again.
func (h *handler) audit(ctx context.Context, action string, detail any, res core.ActionResult, failure error) {
	raw, err := json.Marshal(detail)
	if err != nil {
		raw, _ = json.Marshal(fmt.Sprint(detail))
	}
	e := core.AuditEntry{Actor: identityFrom(ctx).Name, Action: action, Detail: raw, JobIDs: res.IDs,
		Matched: res.Matched, Changed: res.Changed}
	if failure != nil {
		e.Error = failure.Error()
	}
	// Not the request's context: a client that goes away must not leave a
	// change unrecorded.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := h.u.RecordAudit(actx, e); err != nil {
		h.log.Error("gworker admin: the change was made but could not be recorded in the audit log",
			slog.String("actor", e.Actor), slog.String("action", e.Action), slog.String("detail", string(e.Detail)),
			slog.Any("job_ids", e.JobIDs), slog.Int64("changed", e.Changed), slog.Any("error", err))
	}
}

type actionResultJSON struct {
	Action  string  `json:"action"`
	DryRun  bool    `json:"dry_run"`
	Matched int64   `json:"matched"`
	Changed int64   `json:"changed"`
	Skipped int64   `json:"skipped"`
	IDs     []int64 `json:"ids"`
}

func toResultJSON(name string, dry bool, res core.ActionResult) actionResultJSON {
	ids := res.IDs
	if ids == nil {
		ids = []int64{}
	}
	return actionResultJSON{Action: name, DryRun: dry, Matched: res.Matched, Changed: res.Changed, Skipped: res.Skipped, IDs: ids}
}

func (h *handler) apiJobAction(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r.PathValue("id"))
	if err != nil {
		h.apiError(w, err)
		return
	}
	var req actionRequest
	if err := readJSON(r, &req); err != nil {
		h.apiError(w, err)
		return
	}
	if req.IDs != nil || req.Filter != nil {
		h.apiError(w, badInput("an action on one job takes no ids or filter"))
		return
	}
	req.IDs = []int64{id}
	name := r.PathValue("action")
	res, err := h.runAction(r.Context(), name, req)
	if err != nil {
		h.apiError(w, err)
		return
	}
	if res.Matched == 0 && !req.DryRun {
		h.apiError(w, core.ErrJobNotFound)
		return
	}
	writeJSON(w, http.StatusOK, toResultJSON(name, req.DryRun, res))
}

func (h *handler) apiBulkAction(w http.ResponseWriter, r *http.Request) {
	var req actionRequest
	if err := readJSON(r, &req); err != nil {
		h.apiError(w, err)
		return
	}
	name := r.PathValue("action")
	res, err := h.runAction(r.Context(), name, req)
	if err != nil {
		h.apiError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toResultJSON(name, req.DryRun, res))
}

// addRequest is the body of POST /api/v1/jobs, with the settings of
// gworker add.
type addRequest struct {
	Task        string          `json:"task"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	Queue       string          `json:"queue,omitempty"`
	RunAt       string          `json:"run_at,omitempty"`
	MaxAttempts int             `json:"max_attempts,omitempty"`
	Key         string          `json:"key,omitempty"`
	KeyMode     string          `json:"key_mode,omitempty"`
	Priority    int             `json:"priority,omitempty"`
	Flags       []string        `json:"flags,omitempty"`
}

// addJob validates req as gworker add does and adds the job.
func (h *handler) addJob(ctx context.Context, req addRequest) (*core.Job, error) {
	if err := noNUL("the request", append([]string{req.Task, string(req.Payload), req.Queue, req.RunAt, req.Key, req.KeyMode}, req.Flags...)...); err != nil {
		return nil, err
	}
	if req.Task == "" {
		return nil, badInput("task must not be empty")
	}
	payload := json.RawMessage("{}")
	if len(strings.TrimSpace(string(req.Payload))) > 0 {
		if err := jsonNoNUL("payload", req.Payload); err != nil {
			return nil, err
		}
		payload = req.Payload
	}
	spec := &core.JobSpec{QueueName: req.Queue, MaxAttempts: req.MaxAttempts, Priority: req.Priority, JobKey: req.Key,
		JobKeyMode: core.JobKeyMode(req.KeyMode), Flags: req.Flags}
	if req.RunAt != "" {
		t, err := parseRunAt(req.RunAt, time.Now())
		if err != nil {
			return nil, err
		}
		spec.RunAt = t
	}
	job, err := h.u.AddRawJob(ctx, req.Task, payload, spec)
	if err != nil {
		if errors.Is(err, core.ErrInvalidInput) {
			return nil, badInput("%s", addInputError(err))
		}
		h.audit(ctx, "add", req, core.ActionResult{}, err)
		return nil, err
	}
	h.audit(ctx, "add", req, core.ActionResult{Matched: 1, Changed: 1, IDs: []int64{job.ID}}, nil)
	return job, nil
}

func (h *handler) apiAddJob(w http.ResponseWriter, r *http.Request) {
	var req addRequest
	if err := readJSON(r, &req); err != nil {
		h.apiError(w, err)
		return
	}
	job, err := h.addJob(r.Context(), req)
	if err != nil {
		h.apiError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, job)
}

func (h *handler) apiQueues(w http.ResponseWriter, r *http.Request) {
	qs, err := h.u.ListQueues(r.Context())
	if err != nil {
		h.apiError(w, err)
		return
	}
	type queueJSON struct {
		Name     string  `json:"name"`
		Waiting  int64   `json:"waiting"`
		LockedBy *string `json:"locked_by"`
		LockedAt *string `json:"locked_at"`
	}
	out := []queueJSON{}
	for _, q := range qs {
		o := queueJSON{Name: q.Name, Waiting: q.Waiting}
		if q.LockedBy != "" {
			o.LockedBy = &q.LockedBy
		}
		if q.LockedAt != nil {
			s := rfc3339(*q.LockedAt)
			o.LockedAt = &s
		}
		out = append(out, o)
	}
	writeJSON(w, http.StatusOK, map[string]any{"queues": out})
}

func (h *handler) apiTasks(w http.ResponseWriter, r *http.Request) {
	ts, err := h.u.ListTasks(r.Context())
	if err != nil {
		h.apiError(w, err)
		return
	}
	type taskJSON struct {
		Identifier string   `json:"identifier"`
		Waiting    int64    `json:"waiting"`
		Ready      int64    `json:"ready"`
		Workers    []string `json:"workers"`
		Unserved   bool     `json:"unserved"`
	}
	out := []taskJSON{}
	for _, t := range ts {
		ws := t.Workers
		if ws == nil {
			ws = []string{}
		}
		out = append(out, taskJSON{t.Identifier, t.Waiting, t.Ready, ws, t.Waiting > 0 && len(t.Workers) == 0})
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": out})
}

func (h *handler) apiWorkers(w http.ResponseWriter, r *http.Request) {
	v, err := h.workers(r.Context())
	if err != nil {
		h.apiError(w, err)
		return
	}
	type workerJSON struct {
		ID                string  `json:"id"`
		Hostname          string  `json:"hostname"`
		PID               int     `json:"pid"`
		Version           string  `json:"version"`
		Concurrency       int     `json:"concurrency"`
		StartedAt         string  `json:"started_at"`
		LastHeartbeatAt   string  `json:"last_heartbeat_at"`
		HeartbeatAgeS     float64 `json:"heartbeat_age_seconds"`
		HeartbeatInterval float64 `json:"heartbeat_interval_seconds"`
		Stale             bool    `json:"stale"`
		LockedJobs        int     `json:"locked_jobs"`
	}
	type otherJSON struct {
		ID         string `json:"id"`
		LockedJobs int64  `json:"locked_jobs"`
		Queues     int64  `json:"locked_queues"`
		OldestLock string `json:"oldest_lock"`
	}
	ws, others := []workerJSON{}, []otherJSON{}
	for _, x := range v.Workers {
		ws = append(ws, workerJSON{x.ID, x.Hostname, x.PID, x.Version, x.Concurrency, rfc3339(x.StartedAt), rfc3339(x.LastHeartbeatAt),
			x.HeartbeatAge.Seconds(), x.HeartbeatInterval.Seconds(), x.Stale, x.LockedJobs})
	}
	for _, o := range v.Others {
		others = append(others, otherJSON{o.ID, o.LockedJobs, o.LockedQueues, rfc3339(o.OldestLock)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"workers": ws, "other_lockers": others,
		"stale_threshold_seconds": h.threshold.Seconds()})
}

func (h *handler) apiCron(w http.ResponseWriter, r *http.Request) {
	items, err := h.cron(r.Context())
	if err != nil {
		h.apiError(w, err)
		return
	}
	type cronJSON struct {
		Identifier    string  `json:"identifier"`
		Task          string  `json:"task,omitempty"`
		Schedule      string  `json:"schedule,omitempty"`
		KnownSince    *string `json:"known_since"`
		LastExecution *string `json:"last_execution"`
		NextRun       *string `json:"next_run"`
	}
	ts := func(t *time.Time) *string {
		if t == nil {
			return nil
		}
		s := rfc3339(*t)
		return &s
	}
	out := []cronJSON{}
	for _, c := range items {
		out = append(out, cronJSON{c.Identifier, c.Task, c.Schedule, ts(c.KnownSince), ts(c.LastExecution), ts(c.Next)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"cron": out})
}

func (h *handler) apiThroughput(w http.ResponseWriter, r *http.Request) {
	window := time.Duration(0)
	if s := r.URL.Query().Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > 24*time.Hour {
			h.apiError(w, badInput("window must be a duration up to 24h, e.g. 1h"))
			return
		}
		window = d
	}
	tp, err := h.u.Throughput(r.Context(), window)
	if err != nil {
		h.apiError(w, err)
		return
	}
	type pointJSON struct {
		Bucket    string `json:"bucket"`
		Worker    string `json:"worker"`
		Task      string `json:"task"`
		Completed int64  `json:"completed"`
		Failed    int64  `json:"failed"`
	}
	pts := []pointJSON{}
	for _, p := range tp.Points {
		pts = append(pts, pointJSON{rfc3339(p.Bucket), p.WorkerID, p.Task, p.Completed, p.Failed})
	}
	writeJSON(w, http.StatusOK, map[string]any{"now": rfc3339(tp.Now), "since": rfc3339(tp.Since),
		"bucket_seconds": core.ThroughputBucket.Seconds(), "points": pts})
}

type auditJSON struct {
	ID      int64           `json:"id"`
	At      string          `json:"at"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Detail  json.RawMessage `json:"detail"`
	JobIDs  []int64         `json:"job_ids"`
	Matched int64           `json:"matched"`
	Changed int64           `json:"changed"`
	Error   string          `json:"error,omitempty"`
}

func (h *handler) apiAudit(w http.ResponseWriter, r *http.Request) {
	limit := 0
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			h.apiError(w, badInput("limit must be between 1 and 1000"))
			return
		}
		limit = n
	}
	es, err := h.u.ListAudit(r.Context(), limit)
	if err != nil {
		h.apiError(w, err)
		return
	}
	out := []auditJSON{}
	for _, e := range es {
		ids := e.JobIDs
		if ids == nil {
			ids = []int64{}
		}
		out = append(out, auditJSON{e.ID, rfc3339(e.At), e.Actor, e.Action, e.Detail, ids, e.Matched, e.Changed, e.Error})
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out})
}

// maintenanceRequest is the body of the maintenance endpoints.
type maintenanceRequest struct {
	// Tasks are cleanup's tasks (DELETE_PERMAFAILED_JOBS,
	// GC_TASK_IDENTIFIERS, GC_JOB_QUEUES); none means the last two.
	Tasks []string `json:"tasks,omitempty"`
	// WorkerIDs are force-unlock's workers.
	WorkerIDs []string `json:"worker_ids,omitempty"`
	// DryRun makes sweep say what it would do.
	DryRun bool `json:"dry_run,omitempty"`
}

// maintain runs a maintenance operation and records it.
func (h *handler) maintain(ctx context.Context, op string, req maintenanceRequest) (any, error) {
	if err := noNUL("the request", append(req.Tasks, req.WorkerIDs...)...); err != nil {
		return nil, err
	}
	var (
		out any
		err error
		res core.ActionResult
	)
	switch op {
	case "cleanup":
		o := core.CleanupOptions{}
		for _, t := range req.Tasks {
			o.Tasks = append(o.Tasks, core.CleanupTask(t))
		}
		err = h.u.Cleanup(ctx, o) // it keeps the tasks of live workers
		out = map[string]any{"done": err == nil}
	case "force-unlock":
		if len(req.WorkerIDs) == 0 {
			return nil, badInput("force-unlock needs worker_ids")
		}
		err = h.u.ForceUnlockWorkers(ctx, req.WorkerIDs)
		out = map[string]any{"done": err == nil}
	case "sweep":
		var sr core.SweepResult
		sr, err = h.u.SweepStaleWorkers(ctx, core.SweepOptions{DryRun: req.DryRun, SweepPolicy: core.SweepPolicy{StaleThreshold: h.threshold}})
		res = core.ActionResult{Matched: int64(sr.Jobs), Changed: int64(sr.Jobs), IDs: sr.JobIDs}
		if req.DryRun {
			res.Changed = 0
		}
		out = sr // core's one encoding (core.SweepResult.MarshalJSON), as gworker sweep --json prints it
	default:
		return nil, badInput("unknown maintenance operation %q; the operations are cleanup, force-unlock and sweep", op)
	}
	if errors.Is(err, core.ErrInvalidInput) {
		return nil, badInput("%s", strings.TrimPrefix(err.Error(), "gworker: "))
	}
	if op == "sweep" && req.DryRun {
		return out, err
	}
	h.audit(ctx, op, req, res, err)
	return out, err
}

func (h *handler) apiMaintenance(w http.ResponseWriter, r *http.Request) {
	var req maintenanceRequest
	if err := readJSON(r, &req); err != nil {
		h.apiError(w, err)
		return
	}
	out, err := h.maintain(r.Context(), r.PathValue("op"), req)
	if err != nil {
		h.apiError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
