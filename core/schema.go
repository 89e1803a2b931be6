package core

import (
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultSchema is the schema graphile-worker and gworker use unless told
// otherwise.
const DefaultSchema = "graphile_worker"

// maxIdentifierBytes is PostgreSQL's NAMEDATALEN-1. Longer names are silently
// truncated by the server, which would make two tools disagree on the name.
const maxIdentifierBytes = 63

//go:embed sql/*.sql
var sqlFiles embed.FS

func sqlFile(name string) string {
	b, err := sqlFiles.ReadFile("sql/" + name)
	if err != nil {
		// The files are embedded at build time; a missing one is a build bug.
		panic("gworker: missing embedded SQL file " + name)
	}
	return string(b)
}

// quoteIdent quotes a PostgreSQL identifier so that any name is taken
// literally: embedded double quotes are doubled.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// checkSchemaName validates a schema name supplied by the user. Any character
// is allowed (the name is always quoted); the limits are the server's own.
// Unlike the schema's text columns, an identifier's limit is in bytes
// (NAMEDATALEN). field names the option that holds the name.
func checkSchemaName(field, name string) error {
	switch {
	case name == "":
		return &ValidationError{Field: field, Reason: "must not be empty"}
	case len(name) > maxIdentifierBytes:
		return &ValidationError{Field: field, Value: name, Reason: fmt.Sprintf("is %d bytes long; PostgreSQL allows at most %d", len(name), maxIdentifierBytes)}
	case strings.ContainsRune(name, 0):
		return &ValidationError{Field: field, Value: name, Reason: "contains a NUL byte"}
	case !utf8.ValidString(name):
		return &ValidationError{Field: field, Value: name, Reason: "is not valid UTF-8"}
	}
	return nil
}

// renderer substitutes a schema name into SQL text.
type renderer struct {
	quoted    string // the quoted schema name
	dollarTag string // a dollar-quote tag that does not occur in quoted
}

func newRenderer(schema string) renderer {
	q := quoteIdent(schema)
	tag := "$gw$"
	for i := 0; strings.Contains(q, tag); i++ {
		tag = "$gw" + strconv.Itoa(i) + "$"
	}
	return renderer{quoted: q, dollarTag: tag}
}

// render replaces {{schema}} with the quoted schema name and $$ with a
// dollar-quote tag that the schema name cannot terminate early.
func (r renderer) render(sql string) string {
	sql = strings.ReplaceAll(sql, "$$", r.dollarTag)
	return strings.ReplaceAll(sql, "{{schema}}", r.quoted)
}

// sqlState returns the SQLSTATE code of a server error, or "" when err is not
// one. Drivers expose it through a SQLState method on their error type (pgx's
// *pgconn.PgError and lib/pq's *pq.Error both do).
func sqlState(err error) string {
	var s interface{ SQLState() string }
	if errors.As(err, &s) {
		return s.SQLState()
	}
	return ""
}
