package faults

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cutProxy forwards PostgreSQL connections from 127.0.0.1 to a server and,
// once armed, severs chosen ones right after the server answered a
// statement and committed it, but before the client saw the answer: the
// client's result is unknown, the server's is a commit. It reads the
// protocol just enough for that: the statement text of each request (from
// Query, or from Parse and Bind for prepared statements) and the message
// boundaries of the answers, which it holds back until ReadyForQuery.
type cutProxy struct {
	ln       net.Listener
	target   string
	classify func(sql string) string
	// every: each category's every-th answer is cut, while its budget
	// lasts.
	every int

	armed atomic.Bool
	mu    sync.Mutex
	// budget is how many cuts each category has left; seen counts its
	// answers since arming, cuts its cuts.
	budget, seen, cuts map[string]int
	lastCut            time.Time
	done               chan struct{} // closed when every budget is spent
	conns              map[net.Conn]bool
	closed             bool
	wg                 sync.WaitGroup
}

func startCutProxy(t *testing.T, target string, classify func(string) string, every int, budget map[string]int) *cutProxy {
	t.Helper()
	p := &cutProxy{
		ln: listenLocal(t), target: target, classify: classify, every: every,
		budget: budget, seen: map[string]int{}, cuts: map[string]int{},
		done: make(chan struct{}), conns: map[net.Conn]bool{},
	}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *cutProxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close() // the server is away: so is the proxy
			continue
		}
		if !p.track(client, server) {
			return
		}
		s := &proxySession{p: p, client: client, server: server}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); s.clientToServer() }()
		go func() { defer p.wg.Done(); s.serverToClient() }()
	}
}

func (p *cutProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	return true
}

func (p *cutProxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.conns, c)
	}
}

// decide counts an answer of category, whose CommandComplete tag was tag,
// and says whether to cut it. Only fetches that locked jobs count: cutting
// an empty one would test nothing.
func (p *cutProxy) decide(category, tag string) bool {
	if category == "" || !p.armed.Load() {
		return false
	}
	if category == "fetch" && tagRows(tag) == 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.budget[category] == 0 {
		return false
	}
	p.seen[category]++
	if p.seen[category]%p.every != 0 {
		return false
	}
	p.budget[category]--
	p.cuts[category]++
	p.lastCut = time.Now()
	spent := true
	for _, left := range p.budget {
		spent = spent && left == 0
	}
	if spent {
		close(p.done)
	}
	return true
}

func (p *cutProxy) stats() (cuts map[string]int, last time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cuts = map[string]int{}
	for k, v := range p.cuts {
		cuts[k] = v
	}
	return cuts, p.lastCut
}

// proxySession is one client connection and its server connection.
type proxySession struct {
	p              *cutProxy
	client, server net.Conn
	mu             sync.Mutex
	statements     map[string]string // prepared statement name → text
	pending        []string          // statement text of each request not yet answered
	sinceSync      string            // the extended protocol's statement since the last Sync
}

func (s *proxySession) push(sql string) {
	s.mu.Lock()
	s.pending = append(s.pending, sql)
	s.mu.Unlock()
}

func (s *proxySession) pop() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return ""
	}
	sql := s.pending[0]
	s.pending = s.pending[1:]
	return sql
}

// clientToServer forwards the client's messages, noting what each request
// runs. The first message (startup) has no type byte.
func (s *proxySession) clientToServer() {
	defer s.p.untrack(s.client, s.server)
	var lenBuf [4]byte
	if _, err := io.ReadFull(s.client, lenBuf[:]); err != nil {
		return
	}
	n := int(binary.BigEndian.Uint32(lenBuf[:]))
	if n < 4 || n > 1<<16 {
		return
	}
	startup := make([]byte, n)
	copy(startup, lenBuf[:])
	if _, err := io.ReadFull(s.client, startup[4:]); err != nil {
		return
	}
	if _, err := s.server.Write(startup); err != nil {
		return
	}
	s.statements = map[string]string{}
	for {
		typ, msg, err := readMessage(s.client)
		if err != nil {
			return
		}
		switch typ {
		case 'Q': // Query: text
			s.push(cstring(msg[5:]))
		case 'P': // Parse: name, text, ...
			name := cstring(msg[5:])
			text := cstring(msg[5+len(name)+1:])
			s.statements[name] = text
			s.sinceSync = text
		case 'B': // Bind: portal, statement, ...
			portal := cstring(msg[5:])
			s.sinceSync = s.statements[cstring(msg[5+len(portal)+1:])]
		case 'S': // Sync: the extended protocol's request ends, and is answered
			s.push(s.sinceSync)
			s.sinceSync = ""
		}
		if _, err := s.server.Write(msg); err != nil {
			return
		}
	}
}

// serverToClient forwards the server's answers, each held back until its
// ReadyForQuery, when it may be cut instead.
func (s *proxySession) serverToClient() {
	defer s.p.untrack(s.client, s.server)
	var held bytes.Buffer
	completed := false // a CommandComplete is held
	tag := ""          // the last one's
	for {
		typ, msg, err := readMessage(s.server)
		if err != nil {
			return
		}
		switch {
		case typ == 'Z': // ReadyForQuery; its status 'I' means no transaction is open
			sql := s.pop()
			idle := len(msg) > 5 && msg[5] == 'I'
			if completed && idle && s.p.decide(s.p.classify(sql), tag) {
				// The statement committed; the client never learns it.
				return
			}
			held.Write(msg)
			if _, err := s.client.Write(held.Bytes()); err != nil {
				return
			}
			held.Reset()
			completed = false
		case held.Len() == 0 && (typ == 'A' || typ == 'N' || typ == 'S'):
			// Asynchronous: a notification, a notice, a parameter change.
			if _, err := s.client.Write(msg); err != nil {
				return
			}
		default:
			if typ == 'C' {
				completed, tag = true, cstring(msg[5:])
			}
			held.Write(msg)
			if held.Len() > 1<<20 {
				// A large answer is passed on; it will not be cut.
				if _, err := s.client.Write(held.Bytes()); err != nil {
					return
				}
				held.Reset()
				completed = false
			}
		}
	}
}

// readMessage reads one typed protocol message, returning it whole.
func readMessage(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[1:]))
	if n < 4 || n > 1<<30 {
		return 0, nil, errors.New("bad message length")
	}
	msg := make([]byte, 1+n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[5:]); err != nil {
		return 0, nil, err
	}
	return hdr[0], msg, nil
}

// tagRows is the row count of a CommandComplete tag ("UPDATE 3"), or 0.
func tagRows(tag string) int {
	f := strings.Fields(tag)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[len(f)-1])
	return n
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

// classifyWorkerSQL names the worker statements whose answers the proxy
// may cut: the fetch (jobs locked, the worker never learns which), the
// completion and the failure (recorded, the worker does not know it). It
// reads gworker's SQL loosely, so that rewording a statement does not
// silently stop the cuts: the scenario fails when a category got none.
func classifyWorkerSQL(sql string) string {
	s := strings.ToLower(sql)
	switch {
	case strings.Contains(s, "skip locked") && strings.Contains(s, "attempts + 1"):
		return "fetch"
	case strings.Contains(s, "delete from") && strings.Contains(s, "_private_jobs"):
		return "complete"
	case strings.Contains(s, "exp(least(") && strings.Contains(s, "last_error"):
		return "fail"
	}
	return ""
}
