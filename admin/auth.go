package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Role says what an identity may do.
type Role string

const (
	// RoleViewer may read every page and GET endpoint, and change nothing.
	RoleViewer Role = "viewer"
	// RoleOperator may also act on jobs and run maintenance.
	RoleOperator Role = "operator"
)

func (r Role) valid() bool { return r == RoleViewer || r == RoleOperator }

// Identity is who a request comes from.
type Identity struct {
	// Name is shown on the page and recorded in the audit log.
	Name string
	// Role is RoleViewer or RoleOperator; anything else is refused.
	Role Role
}

// ErrUnauthenticated is what an authenticator returns for a request that
// carries no credentials or wrong ones; the handler answers 401. An
// AuthFunc may return it, or any other error, which is also a 401.
var ErrUnauthenticated = errors.New("admin: not authenticated")

// Authenticator decides who a request comes from. Make one with Basic,
// Bearer, AuthFunc or NoAuth.
type Authenticator interface {
	authenticate(r *http.Request) (Identity, error)
	// challenge is the WWW-Authenticate header of a 401, "" for none.
	challenge() string
	check() error
}

// BasicUser is a user of Basic authentication.
type BasicUser struct {
	Name     string
	Password string
	Role     Role
}

// Basic authenticates with HTTP Basic authentication, which browsers ask
// for themselves. Names and passwords are compared in constant time, over
// every user, so timing tells nothing about which part was wrong. Use it
// over TLS, or on a loopback address.
func Basic(users ...BasicUser) Authenticator { return basicAuth{users: users} }

type basicAuth struct{ users []BasicUser }

func (b basicAuth) check() error {
	if len(b.users) == 0 {
		return errors.New("admin: Basic needs at least one user")
	}
	for i, u := range b.users {
		switch {
		case u.Name == "" || strings.Contains(u.Name, ":"):
			return fmt.Errorf("admin: Basic user %d: the name must not be empty nor contain ':'", i)
		case u.Password == "":
			return fmt.Errorf("admin: Basic user %q: the password must not be empty", u.Name)
		case !u.Role.valid():
			return fmt.Errorf("admin: Basic user %q: role %q must be %q or %q", u.Name, u.Role, RoleViewer, RoleOperator)
		}
	}
	return nil
}

func (b basicAuth) challenge() string { return `Basic realm="gworker admin", charset="UTF-8"` }

func (b basicAuth) authenticate(r *http.Request) (Identity, error) {
	name, password, ok := r.BasicAuth()
	if !ok {
		return Identity{}, ErrUnauthenticated
	}
	// Hashing first makes both sides the same length, which
	// ConstantTimeCompare needs to take the same time for any input.
	nh, ph := sha256.Sum256([]byte(name)), sha256.Sum256([]byte(password))
	found := -1
	for i, u := range b.users {
		un, up := sha256.Sum256([]byte(u.Name)), sha256.Sum256([]byte(u.Password))
		if subtle.ConstantTimeCompare(nh[:], un[:])&subtle.ConstantTimeCompare(ph[:], up[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Identity{}, ErrUnauthenticated
	}
	return Identity{Name: b.users[found].Name, Role: b.users[found].Role}, nil
}

// BearerToken is a token of Bearer authentication.
type BearerToken struct {
	// Name identifies the token's holder on the page and in the audit log.
	Name  string
	Token string
	Role  Role
}

// Bearer authenticates with "Authorization: Bearer TOKEN", compared in
// constant time. Browsers, which cannot send that header by themselves,
// get a login form that keeps the token in an HttpOnly, SameSite=Strict
// cookie scoped to the handler's prefix (never in script-readable
// storage).
func Bearer(tokens ...BearerToken) Authenticator { return bearerAuth{tokens: tokens} }

type bearerAuth struct{ tokens []BearerToken }

func (b bearerAuth) check() error {
	if len(b.tokens) == 0 {
		return errors.New("admin: Bearer needs at least one token")
	}
	for i, t := range b.tokens {
		switch {
		case t.Name == "":
			return fmt.Errorf("admin: Bearer token %d: the name must not be empty", i)
		case len(t.Token) < 16:
			return fmt.Errorf("admin: Bearer token %q: must be at least 16 characters long", t.Name)
		case !t.Role.valid():
			return fmt.Errorf("admin: Bearer token %q: role %q must be %q or %q", t.Name, t.Role, RoleViewer, RoleOperator)
		}
	}
	return nil
}

func (b bearerAuth) challenge() string { return `Bearer realm="gworker admin"` }

// tokenCookie holds a browser's bearer token.
const tokenCookie = "gworker_admin_token"

func (b bearerAuth) authenticate(r *http.Request) (Identity, error) {
	token := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return Identity{}, ErrUnauthenticated
		}
		token = strings.TrimSpace(rest)
	} else if c, err := r.Cookie(tokenCookie); err == nil {
		token = c.Value
	}
	if token == "" {
		return Identity{}, ErrUnauthenticated
	}
	return b.match(token)
}

func (b bearerAuth) match(token string) (Identity, error) {
	th := sha256.Sum256([]byte(token))
	found := -1
	for i, t := range b.tokens {
		h := sha256.Sum256([]byte(t.Token))
		if subtle.ConstantTimeCompare(th[:], h[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Identity{}, ErrUnauthenticated
	}
	return Identity{Name: b.tokens[found].Name, Role: b.tokens[found].Role}, nil
}

// AuthFunc authenticates with the application's own function: its session
// login, or headers set by a trusted reverse proxy. An error (for example
// ErrUnauthenticated) answers 401; an identity with an unknown role, 403.
func AuthFunc(f func(*http.Request) (Identity, error)) Authenticator { return funcAuth{f: f} }

type funcAuth struct {
	f func(*http.Request) (Identity, error)
}

func (a funcAuth) check() error {
	if a.f == nil {
		return errors.New("admin: AuthFunc needs a function")
	}
	return nil
}
func (a funcAuth) challenge() string                              { return "" }
func (a funcAuth) authenticate(r *http.Request) (Identity, error) { return a.f(r) }

// NoAuth lets every request in as "anonymous" with the given role. It
// exists so that running without authentication is a visible choice; use
// it only where the network itself decides who connects (a loopback
// address, a sidecar behind an authenticating proxy).
func NoAuth(role Role) Authenticator { return noAuth{role: role} }

type noAuth struct{ role Role }

func (n noAuth) check() error {
	if !n.role.valid() {
		return fmt.Errorf("admin: NoAuth: role %q must be %q or %q", n.role, RoleViewer, RoleOperator)
	}
	return nil
}
func (n noAuth) challenge() string { return "" }
func (n noAuth) authenticate(*http.Request) (Identity, error) {
	return Identity{Name: "anonymous", Role: n.role}, nil
}
