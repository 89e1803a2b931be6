package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// serverInfo says which of the server's counters the run can read, and
// whether the server is the benchmark's own (so that it may switch
// statement tracking on and off).
type serverInfo struct {
	own        bool   // a server the benchmark started, not $DATABASE_URL
	preloaded  bool   // started with shared_preload_libraries=pg_stat_statements
	statements bool   // the observer can read pg_stat_statements
	postmaster int    // the local postmaster's pid, 0 if unknown
	database   string // the database the benchmark runs in
	// observer reads the counters and samples pg_stat_activity. On the
	// benchmark's own server it connects to a database of its own
	// (statsDatabase), so that none of its statements count in the
	// benchmark database's counters; elsewhere it is the benchmark's pool.
	observer *pgxpool.Pool
	separate bool // observer is in statsDatabase
}

// statsDatabase is where the observer connects on the benchmark's own
// server.
const statsDatabase = "gwbench_stats"

// statStatementsAvailable tells whether the server binaries pgtest will use
// come with pg_stat_statements (PostgreSQL's contrib), looking where pgtest
// looks: the installation of pg_config --bindir if it has a server, else
// the highest /usr/lib/postgresql/N.
func statStatementsAvailable() bool {
	pgConfig := func(arg string) string {
		out, err := exec.Command("pg_config", arg).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	if bin := pgConfig("--bindir"); bin != "" && exists(filepath.Join(bin, "postgres")) {
		return hasStatStatements(pgConfig("--pkglibdir"), pgConfig("--sharedir"))
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		return false
	}
	// versionOf reads N from /usr/lib/postgresql/N/bin/x.
	slices.SortFunc(bins, func(a, b string) int { return versionOf(b) - versionOf(a) })
	home := filepath.Dir(filepath.Dir(bins[0]))
	return hasStatStatements(filepath.Join(home, "lib"), filepath.Join("/usr/share/postgresql", filepath.Base(home)))
}

func hasStatStatements(lib, share string) bool {
	return lib != "" && share != "" &&
		exists(filepath.Join(lib, "pg_stat_statements.so")) && exists(filepath.Join(share, "extension", "pg_stat_statements.control"))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// statStatementsSettings load pg_stat_statements. Tracking is switched off
// with ALTER SYSTEM once the server runs (a setting given on the command
// line would override ALTER SYSTEM for good): the scale-out runs switch it
// on for their own duration only, so that the other measurements run on a
// server that records nothing per statement.
var statStatementsSettings = map[string]string{
	"shared_preload_libraries":         "pg_stat_statements",
	"pg_stat_statements.max":           "1000",
	"pg_stat_statements.save":          "off",
	"pg_stat_statements.track_utility": "off",
}

// prepareStats sets up the observer: on the benchmark's own server a
// database of its own with the pg_stat_statements extension; elsewhere the
// benchmark's pool, reading pg_stat_statements if it is installed. It
// returns a function that closes what it opened.
func (b *bench) prepareStats(ctx context.Context) (func(), error) {
	si := &b.pg
	if err := b.db.pool.QueryRow(ctx, "select current_database()").Scan(&si.database); err != nil {
		return nil, err
	}
	si.observer = b.db.pool
	closeAll := func() {}
	if !b.cfg.part(pScale) {
		return closeAll, nil
	}
	if si.own {
		if err := b.db.exec(ctx, "drop database if exists "+q(statsDatabase)); err != nil {
			return nil, err
		}
		if err := b.db.exec(ctx, "create database "+q(statsDatabase)); err != nil {
			return nil, err
		}
		cfg, err := pgxpool.ParseConfig(b.url)
		if err != nil {
			return nil, err
		}
		cfg.ConnConfig.Database = statsDatabase
		cfg.MaxConns = 2
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, err
		}
		si.observer, si.separate = pool, true
		closeAll = pool.Close
		if si.preloaded {
			if _, err := pool.Exec(ctx, "create extension if not exists pg_stat_statements"); err != nil {
				b.logf("pg_stat_statements: %v", err)
			}
			if err := b.trackStatements(ctx, false); err != nil {
				return nil, err
			}
		}
	}
	var n int64
	si.statements = si.observer.QueryRow(ctx, "select count(*) from pg_stat_statements where false").Scan(&n) == nil
	if !si.statements && b.cfg.part(pScale) {
		b.logf("pg_stat_statements is not readable: the scale-out report goes without statement counters")
	}
	return closeAll, nil
}

// trackStatements switches statement tracking (and WAL I/O timing) on or
// off on the benchmark's own server; on anyone else's server it does
// nothing, and the counters are read as that server keeps them.
func (b *bench) trackStatements(ctx context.Context, on bool) error {
	if !b.pg.own || !b.pg.preloaded {
		return nil
	}
	track, wal := "none", "off"
	if on {
		track, wal = "top", "on"
	}
	stmts := []string{"alter system set pg_stat_statements.track = " + track}
	if n, err := b.db.count(ctx, "select count(*) from pg_settings where name = 'track_wal_io_timing'"); err == nil && n == 1 {
		stmts = append(stmts, "alter system set track_wal_io_timing = "+wal)
	}
	for _, s := range append(stmts, "select pg_reload_conf()") {
		if err := b.db.exec(ctx, s); err != nil {
			return err
		}
	}
	// The postmaster rereads the file when it handles the signal; a
	// backend before its next statement. Wait until one sees it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got string
		if err := b.db.pool.QueryRow(ctx, "select current_setting('pg_stat_statements.track')").Scan(&got); err != nil {
			return err
		}
		if got == track {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pg_stat_statements.track is still %q after the reload", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// counters is one reading of the server's cumulative statistics and of the
// machine's CPU time.
type counters struct {
	at         time.Time
	database   map[string]float64         // pg_stat_database, this database
	wal        map[string]float64         // pg_stat_wal (PostgreSQL 14+)
	statements map[string]statementCounts // pg_stat_statements by queryid, userid, toplevel
	serverCPU  float64                    // seconds of CPU of the postmaster and its children; -1 unknown
	machine    cpuTimes                   // /proc/stat
}

type statementCounts struct {
	query  string
	values map[string]float64
}

// readCounters reads every counter it can on the observer's connection; a
// view that is missing (an older server, no extension) is left empty.
func (b *bench) readCounters(ctx context.Context, conn *pgxpool.Conn) (*counters, error) {
	c := &counters{at: time.Now(), serverCPU: -1}
	dbname := b.pg.database
	var err error
	if c.database, err = jsonRow(ctx, conn, "select to_jsonb(d) from pg_stat_database d where datname = $1", dbname); err != nil {
		return nil, err
	}
	c.wal, _ = jsonRow(ctx, conn, "select to_jsonb(w) from pg_stat_wal w")
	if b.pg.statements {
		rows, err := conn.Query(ctx, `select to_jsonb(s) from pg_stat_statements s
  where dbid = (select oid from pg_database where datname = $1)`, dbname)
		if err != nil {
			return nil, err
		}
		c.statements = map[string]statementCounts{}
		for rows.Next() {
			var raw []byte
			if err := rows.Scan(&raw); err != nil {
				rows.Close()
				return nil, err
			}
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				rows.Close()
				return nil, err
			}
			q, _ := m["query"].(string)
			key := fmt.Sprint(m["queryid"], "/", m["userid"], "/", m["toplevel"])
			c.statements[key] = statementCounts{query: q, values: numbers(m)}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	if b.pg.postmaster > 0 {
		if cpu, err := processTreeCPU(b.pg.postmaster); err == nil {
			c.serverCPU = cpu
		}
	}
	c.machine, _ = readCPUTimes()
	return c, nil
}

// jsonRow reads one jsonb row as numbers; no row is an empty map.
func jsonRow(ctx context.Context, conn *pgxpool.Conn, sql string, args ...any) (map[string]float64, error) {
	var raw []byte
	err := conn.QueryRow(ctx, sql, args...).Scan(&raw)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return map[string]float64{}, nil
		}
		return nil, fmt.Errorf("%s: %w", firstWords(sql), err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return numbers(m), nil
}

// numbers keeps the numeric fields of a decoded JSON object.
func numbers(m map[string]any) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if f, ok := v.(float64); ok {
			out[k] = f
		}
	}
	return out
}

// delta subtracts before from after, field by field; fields missing before
// count as zero.
func delta(before, after map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(after))
	for k, v := range after {
		out[k] = v - before[k]
	}
	return out
}

// counterDelta is what happened between two readings.
type counterDelta struct {
	seconds    float64
	database   map[string]float64
	wal        map[string]float64
	statements []statementDelta // by execution time, most first
	serverCPU  float64          // -1 unknown
	machine    cpuTimes
}

type statementDelta struct {
	query  string
	values map[string]float64
}

func diffCounters(before, after *counters) counterDelta {
	d := counterDelta{
		seconds:   after.at.Sub(before.at).Seconds(),
		database:  delta(before.database, after.database),
		wal:       delta(before.wal, after.wal),
		serverCPU: -1,
		machine:   cpuTimes{busy: after.machine.busy - before.machine.busy, total: after.machine.total - before.machine.total},
	}
	if before.serverCPU >= 0 && after.serverCPU >= 0 {
		d.serverCPU = after.serverCPU - before.serverCPU
	}
	for k, s := range after.statements {
		v := delta(before.statements[k].values, s.values)
		if v["calls"] > 0 {
			d.statements = append(d.statements, statementDelta{query: s.query, values: v})
		}
	}
	slices.SortFunc(d.statements, func(a, b statementDelta) int {
		ta, tb := execTime(a.values), execTime(b.values)
		switch {
		case ta > tb:
			return -1
		case ta < tb:
			return 1
		}
		return strings.Compare(a.query, b.query)
	})
	return d
}

// execTime is a statement's execution time in ms (total_exec_time, or
// total_time before PostgreSQL 13).
func execTime(v map[string]float64) float64 {
	if t, ok := v["total_exec_time"]; ok {
		return t
	}
	return v["total_time"]
}

// cpuTimes are CPU seconds, summed over every CPU.
type cpuTimes struct {
	busy, total float64
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// readCPUTimes reads the machine's CPU time from /proc/stat.
func readCPUTimes() (cpuTimes, error) {
	bs, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	return parseProcStat(string(bs))
}

// parseProcStat reads the first "cpu" line: user nice system idle iowait
// irq softirq steal ...; idle and iowait are not busy, guest time is
// already in user.
func parseProcStat(s string) (cpuTimes, error) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var t cpuTimes
	for i, x := range f[1:] {
		if i >= 8 {
			break
		}
		v, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: %q: %w", x, err)
		}
		t.total += v / clockTicks
		if i != 3 && i != 4 {
			t.busy += v / clockTicks
		}
	}
	return t, nil
}

// processTreeCPU is the CPU time of the process pid and of its children:
// the live ones (from /proc), and the ended ones it waited for (cutime and
// cstime). PostgreSQL's backends are the postmaster's children, so the
// difference of two readings is the server's CPU in between, whichever
// backends came and went.
func processTreeCPU(pid int) (float64, error) {
	st, err := readProcStat(pid)
	if err != nil {
		return 0, err
	}
	total := st.utime + st.stime + st.cutime + st.cstime
	kids, err := children(pid)
	for _, cs := range kids {
		total += cs.utime + cs.stime
	}
	return total / clockTicks, err
}

// unreapedChildren counts pid's children that have exited and that it has
// not reaped yet: their CPU time is in neither a live child's nor pid's
// cutime and cstime, but in their own /proc entry, which can go between
// the reads of processTreeCPU.
func unreapedChildren(pid int) (int, error) {
	kids, err := children(pid)
	n := 0
	for _, cs := range kids {
		if cs.state == 'Z' {
			n++
		}
	}
	return n, err
}

// children reads the /proc/PID/stat of pid's children; one that ends
// while they are read is left out.
func children(pid int) ([]procStat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []procStat
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if cs, err := readProcStat(child); err == nil && cs.ppid == pid {
			out = append(out, cs)
		}
	}
	return out, nil
}

type procStat struct {
	state                        byte // R, S, D, Z (a zombie: exited, its parent has not reaped it yet), ...
	ppid                         int
	utime, stime, cutime, cstime float64
}

func readProcStat(pid int) (procStat, error) {
	bs, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcPidStat(string(bs))
}

// parseProcPidStat reads /proc/PID/stat: "pid (comm) state ppid ..." with
// utime, stime, cutime and cstime the 14th to 17th fields. comm may hold
// spaces and parentheses, so the fields start after the last ')'.
func parseProcPidStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, errors.New("no ')' in /proc/PID/stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/PID/stat: %d fields after comm", len(f))
	}
	st := procStat{state: f[0][0]}
	var err error
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, err
	}
	for i, p := range []*float64{&st.utime, &st.stime, &st.cutime, &st.cstime} {
		if *p, err = strconv.ParseFloat(f[11+i], 64); err != nil {
			return procStat{}, err
		}
	}
	return st, nil
}

// waitSampler reads pg_stat_activity every interval on its own connection
// and counts what the workers' backends (application_name appName) were
// doing: running on a CPU, waiting for something (its wait event), idle
// waiting for their client, or idle as the connection that listens for
// new jobs (its last statement was LISTEN).
type waitSampler struct {
	mu      sync.Mutex
	samples int
	counts  map[string]int // state -> backend-samples
	queries int            // statements the sampler ran
	stop    chan struct{}
	done    chan struct{}
}

// waitState names what a backend was doing in one sample; query is the
// start of its current or last statement.
func waitState(state, waitType, waitEvent, query string) string {
	switch {
	case state == "active" && waitType == "":
		return "running (on CPU)"
	case state == "active":
		return waitType + ":" + waitEvent
	case state == "idle" && strings.HasPrefix(strings.ToLower(strings.TrimSpace(query)), "listen"):
		return "idle listener"
	case state == "idle":
		return "idle (waiting for the worker)"
	case state == "":
		return "starting or ending"
	}
	return state
}

// startWaitSampler samples every interval from one interval after its
// start, when the workers have been told to start, until finish.
func startWaitSampler(ctx context.Context, conn *pgxpool.Conn, appName string, interval time.Duration) *waitSampler {
	s := &waitSampler{counts: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rows, err := conn.Query(ctx, `select coalesce(state, ''), coalesce(wait_event_type, ''), coalesce(wait_event, ''), left(coalesce(query, ''), 16)
  from pg_stat_activity where application_name = $1`, appName)
			if err != nil {
				continue
			}
			seen := map[string]int{}
			for rows.Next() {
				var st, wt, we, q string
				if rows.Scan(&st, &wt, &we, &q) == nil {
					seen[waitState(st, wt, we, q)]++
				}
			}
			rows.Close()
			s.mu.Lock()
			s.queries++
			if rows.Err() == nil {
				s.samples++
				for k, v := range seen {
					s.counts[k] += v
				}
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// finish stops the sampler and returns the samples taken, the
// backend-samples per state and the statements it ran.
func (s *waitSampler) finish() (int, map[string]int, int) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.counts, s.queries
}
