package admin

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/gworker/gworker/core"
)

// filterJSON is a job filter as the API takes it in a body and returns
// it; the query string of GET /api/v1/jobs and of the jobs page has the
// same names.
type filterJSON struct {
	State   []string        `json:"state,omitempty"`
	Task    []string        `json:"task,omitempty"`
	Queue   []string        `json:"queue,omitempty"`
	Key     string          `json:"key,omitempty"`
	Worker  string          `json:"worker,omitempty"`
	Flag    []string        `json:"flag,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// inputError is a request's mistake, answered with 400 and its text.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// noNUL refuses NUL characters, which PostgreSQL text cannot hold: better a
// clear 400 than a database error.
func noNUL(field string, values ...string) error {
	for _, v := range values {
		if strings.ContainsRune(v, 0) {
			return badInput("%s contains a NUL character", field)
		}
	}
	return nil
}

// jsonNoNUL decodes JSON text and refuses NUL characters in its strings
// (as \u0000): PostgreSQL's jsonb cannot hold them.
func jsonNoNUL(field string, raw []byte) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return badInput("%s is not valid JSON: %v", field, err)
	}
	var walk func(any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case string:
			return noNUL(field, x)
		case []any:
			for _, e := range x {
				if err := walk(e); err != nil {
					return err
				}
			}
		case map[string]any:
			for k, e := range x {
				if err := noNUL(field, k); err != nil {
					return err
				}
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(v)
}

// listParam reads a repeatable parameter, each value possibly a
// comma-separated list (state=failed,retrying); empty values are ignored.
func listParam(q url.Values, name string, split bool) []string {
	var out []string
	for _, v := range q[name] {
		parts := []string{v}
		if split {
			parts = strings.Split(v, ",")
		}
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// filterFromQuery reads the filter parameters of a query string.
func filterFromQuery(q url.Values) (filterJSON, error) {
	f := filterJSON{
		State:  listParam(q, "state", true),
		Task:   listParam(q, "task", false),
		Queue:  listParam(q, "queue", false),
		Key:    q.Get("key"),
		Worker: q.Get("worker"),
		Flag:   listParam(q, "flag", false),
		Error:  q.Get("error"),
	}
	if p := strings.TrimSpace(q.Get("payload")); p != "" {
		f.Payload = json.RawMessage(p)
	}
	return f, nil
}

// toCore checks f and returns core's filter.
func (f filterJSON) toCore() (core.JobFilter, error) {
	for _, l := range []struct {
		name string
		v    []string
	}{{"state", f.State}, {"task", f.Task}, {"queue", f.Queue}, {"flag", f.Flag}, {"key", []string{f.Key}},
		{"worker", []string{f.Worker}}, {"error", []string{f.Error}}, {"payload", []string{string(f.Payload)}}} {
		if err := noNUL(l.name, l.v...); err != nil {
			return core.JobFilter{}, err
		}
	}
	cf := core.JobFilter{Tasks: f.Task, Queues: f.Queue, Key: f.Key, LockedBy: f.Worker, Flags: f.Flag, ErrorContains: f.Error}
	for _, s := range f.State {
		cf.States = append(cf.States, core.JobState(s))
	}
	if len(f.Payload) > 0 {
		if err := jsonNoNUL("payload", f.Payload); err != nil {
			return core.JobFilter{}, err
		}
		cf.PayloadContains = f.Payload
	}
	if err := cf.Validate(); err != nil {
		return core.JobFilter{}, badInput("%s", strings.TrimPrefix(err.Error(), "gworker: "))
	}
	return cf, nil
}

// Fields returns f as form fields, for hidden inputs that keep the filter.
func (f filterJSON) Fields() url.Values { return f.query() }

// query returns f as query parameters, for links that keep the filter.
func (f filterJSON) query() url.Values {
	q := url.Values{}
	if len(f.State) > 0 {
		q.Set("state", strings.Join(f.State, ","))
	}
	for _, t := range f.Task {
		q.Add("task", t)
	}
	for _, t := range f.Queue {
		q.Add("queue", t)
	}
	for _, t := range f.Flag {
		q.Add("flag", t)
	}
	for k, v := range map[string]string{"key": f.Key, "worker": f.Worker, "error": f.Error, "payload": string(f.Payload)} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// Has says whether the filter selects state s (for the checkboxes).
func (f filterJSON) Has(s core.JobState) bool {
	for _, x := range f.State {
		if x == string(s) {
			return true
		}
	}
	return false
}

// parseID reads a job id from a path.
func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badInput("%q is not a job id", s)
	}
	return id, nil
}
