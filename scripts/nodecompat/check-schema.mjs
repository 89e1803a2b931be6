// check-schema.mjs: let Node graphile-worker migrate SCHEMA and report whether
// it considered the schema already fully up to date.
//
//   DATABASE_URL=postgres://... SCHEMA=graphile_worker run.sh check-schema
//
// Exit 0 and "UP TO DATE": Node ran no migration, the migrations table and
// every catalog fact of the schema (catalog.sql) are unchanged, and Node
// logged no warning or error. Exit 1 and "NOT UP TO DATE" with the reasons
// otherwise (including when graphile-worker refused to start). Exit 2 on
// usage or connection problems.
//
// Node's log (all levels, debug included) is copied to stderr as it happens.
// Set NODECOMPAT_DIFF_LIMIT to change how many catalog diff lines are shown
// (default 400).
import {
  describeMigrations,
  diffFacts,
  die,
  graphileWorkerVersion,
  loadGraphileWorker,
  makeCapturingLogger,
  captureConsole,
  settings,
  withSchemaWatch,
} from "./lib.mjs";

if (process.argv.length > 2) {
  die(2, "usage: DATABASE_URL=... SCHEMA=... check-schema.mjs  (no arguments)");
}
const { connectionString, schema } = settings();
const { runMigrations, Logger } = await loadGraphileWorker();
const { logger, entries } = makeCapturingLogger(Logger);

// Observe graphile-worker's own migration hooks through its plugin system.
const hookEvents = [];
const observer = {
  name: "GworkerNodecompatObserverPlugin",
  version: "0.0.0",
  worker: {
    hooks: {
      prebootstrap() {
        hookEvents.push("prebootstrap (schema or migrations table had to be (re)installed)");
      },
      migrationError(_ctx, event) {
        hookEvents.push(`migrationError: ${event.error?.message}`);
      },
    },
  },
};

console.log(`nodecompat check-schema: graphile-worker ${graphileWorkerVersion()} on node ${process.version}, schema ${schema}`);

let watch;
const restoreConsole = captureConsole(entries);
try {
  watch = await withSchemaWatch(connectionString, schema, () =>
    runMigrations({ connectionString, schema, logger, preset: { plugins: [observer] } }),
  );
} catch (e) {
  restoreConsole();
  die(2, `could not inspect the database: ${e.message}`);
}
restoreConsole();
process.exitCode = 0; // graphile-worker may set 57 on a breaking-version clash; we decide below

const { before, after } = watch;
// graphile-worker logs "Running <kind> migration <file>" before each migration
// it attempts, and "Some other worker has performed migration <file>" when the
// attempt clashed with an existing migrations row.
const attempted = entries
  .filter((e) => /^Running (breaking|backwards-compatible) migration /.test(e.message))
  .map((e) => e.message.replace(/^Running /, ""));
const clashed = entries
  .map((e) => /^Some other worker has performed migration (\S+?);/.exec(e.message))
  .filter(Boolean)
  .map((m) => m[1]);
const problems = entries.filter((e) => e.level === "warning" || e.level === "error");

console.log(`before: schema ${before.schemaExists ? "exists" : "absent"}; ${describeMigrations(before.migrations)}; catalog ${before.facts.length} facts sha256=${before.checksum}`);
console.log(`after:  schema ${after.schemaExists ? "exists" : "absent"}; ${describeMigrations(after.migrations)}; catalog ${after.facts.length} facts sha256=${after.checksum}`);
console.log(`node log: ${entries.length} messages, ${problems.length} warnings/errors`);

const reasons = [];
if (watch.error) reasons.push(`graphile-worker runMigrations failed: ${watch.error.message}`);
if (attempted.length) {
  reasons.push(
    `Node attempted ${attempted.length} migration(s): ${attempted.join(", ")}` +
      (clashed.length ? ` (${clashed.length} of them clashed with an existing migrations row: ${clashed.join(", ")})` : ""),
  );
}
const hookCounts = new Map();
for (const h of hookEvents) hookCounts.set(h, (hookCounts.get(h) || 0) + 1);
for (const [h, n] of hookCounts) reasons.push(`hook ${h}${n > 1 ? ` (x${n})` : ""}`);
if (watch.migrationsChanged) {
  const b = new Map((before.migrations || []).map((m) => [m.id, JSON.stringify(m)]));
  const a = new Map((after.migrations || []).map((m) => [m.id, JSON.stringify(m)]));
  const changed = [];
  for (const [id, row] of a) if (b.get(id) !== row) changed.push(`${b.has(id) ? "changed" : "added"} ${row}`);
  for (const [id, row] of b) if (!a.has(id)) changed.push(`removed ${row}`);
  reasons.push(`migrations table changed (${describeMigrations(before.migrations)} -> ${describeMigrations(after.migrations)}):\n    ${changed.join("\n    ")}`);
}
if (watch.catalogChanged) {
  const diff = diffFacts(before.facts, after.facts);
  const limit = Number(process.env.NODECOMPAT_DIFF_LIMIT || 400);
  const shown = diff.slice(0, limit);
  reasons.push(
    `schema objects changed (${diff.length} catalog lines differ; - before, + after):\n    ${shown.join("\n    ")}` +
      (diff.length > shown.length ? `\n    ... ${diff.length - shown.length} more (NODECOMPAT_DIFF_LIMIT)` : ""),
  );
}
for (const p of problems) reasons.push(`Node logged ${p.level} [${p.scope.label || "-"}]: ${p.message}`);

if (reasons.length === 0) {
  console.log(`UP TO DATE: graphile-worker ${graphileWorkerVersion()} accepted schema ${schema} as it was (${describeMigrations(after.migrations)}); nothing applied, nothing changed, no warnings`);
  process.exit(0);
}
console.log(`NOT UP TO DATE: schema ${schema}:`);
for (const r of reasons) console.log(`  - ${r}`);
process.exit(1);
