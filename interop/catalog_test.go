package interop_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
)

// TestCatalogMatchesNode migrates one schema with Node graphile-worker 0.18
// and one with gworker and compares them live, object by object (catalog.sql
// lists columns, constraints, indexes, functions' signatures and
// attributes, views, types, sequences, triggers, policies, RLS, ACLs and
// comments) and ledger row by ledger row. Then each side migrates the
// other's schema, which must change nothing: Node's runMigrations on
// gworker's schema, and gworker's Migrate on Node's (apart from adding
// gworker's own _private_gworker_ objects).
func TestCatalogMatchesNode(t *testing.T) {
	t.Parallel()
	e := setup(t, 2*time.Minute)
	nodeSchema, goSchema := schemaName(), schemaName()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); e.goMigrate(t, goSchema) }()
	e.nodeMigrate(t, nodeSchema, "", 0)
	wg.Wait()

	nodeFacts, goFacts := e.catalogFacts(t, nodeSchema), e.catalogFacts(t, goSchema)
	if d := diffLines(graphileOnly(nodeFacts, false), graphileOnly(goFacts, false)); d != "" {
		t.Errorf("gworker's schema differs from graphile-worker 0.18's (- Node, + gworker):\n%s", d)
	}
	if len(graphileOnly(nodeFacts, false)) < 100 {
		t.Errorf("the catalog of Node's schema has only %d facts; is catalog.sql reading the right schema?", len(nodeFacts))
	}
	if n, g := e.ledger(t, nodeSchema), e.ledger(t, goSchema); !slices.Equal(n, g) {
		t.Errorf("migrations rows differ:\nNode:    %v\ngworker: %v", n, g)
	}

	// Node on gworker's schema: nothing to do.
	e.nodeMigrate(t, goSchema, "", 0)
	if d := diffLines(goFacts, e.catalogFacts(t, goSchema)); d != "" {
		t.Errorf("graphile-worker 0.18's runMigrations changed gworker's schema (- before, + after):\n%s", d)
	}

	// gworker on Node's schema: graphile-worker's objects stay as Node made
	// them, bodies included.
	ledgerBefore := e.ledger(t, nodeSchema)
	e.goMigrate(t, nodeSchema)
	if d := diffLines(graphileOnly(nodeFacts, true), graphileOnly(e.catalogFacts(t, nodeSchema), true)); d != "" {
		t.Errorf("gworker's Migrate changed graphile-worker's objects in Node's schema (- before, + after):\n%s", d)
	}
	if after := e.ledger(t, nodeSchema); !slices.Equal(ledgerBefore, after) {
		t.Errorf("gworker's Migrate changed Node's migrations table:\nbefore: %v\nafter:  %v", ledgerBefore, after)
	}
}

// TestMigrationRaceWithNode starts Node's runMigrations and gworker's
// Migrate on the same empty schema at the same instant, ten times: neither
// may fail, and the result must be graphile-worker 0.18's catalog and
// ledger each time.
func TestMigrationRaceWithNode(t *testing.T) {
	t.Parallel()
	e := setup(t, 4*time.Minute)
	ref := schemaName()
	e.nodeMigrate(t, ref, "", 0)
	want, wantLedger := graphileOnly(e.catalogFacts(t, ref), false), e.ledger(t, ref)

	for i := range 10 {
		schema := schemaName()
		// The agent connects and loads graphile-worker first, then waits
		// for "go", so both sides start their migration together.
		a := e.startAgent(t, "migrate", map[string]any{"schema": schema, "waitForGo": true}, nil)
		a.expect(e.ctx, "ready")
		goErr := make(chan error, 1)
		start := make(chan struct{})
		go func() {
			<-start
			goErr <- core.Migrate(e.ctx, e.db, core.MigrateOptions{Schema: schema})
		}()
		a.send("go")
		close(start)
		a.expect(e.ctx, "migrated")
		a.finish(e.ctx)
		if err := <-goErr; err != nil {
			t.Fatalf("round %d: gworker's Migrate failed while Node migrated too: %v", i, err)
		}
		if d := diffLines(want, graphileOnly(e.catalogFacts(t, schema), false)); d != "" {
			t.Fatalf("round %d: catalog after the race (- Node alone, + raced):\n%s", i, d)
		}
		if got := e.ledger(t, schema); !slices.Equal(wantLedger, got) {
			t.Fatalf("round %d: migrations after the race: %v, want %v", i, got, wantLedger)
		}
		// Either side may have won any step; both must now call it done.
		ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
		if err := core.Migrate(ctx, e.db, core.MigrateOptions{Schema: schema}); err != nil {
			t.Fatalf("round %d: gworker's Migrate after the race: %v", i, err)
		}
		cancel()
	}
}
