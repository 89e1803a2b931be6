// Shared helpers for the gworker <-> Node graphile-worker compatibility scripts.
//
// The npm packages live outside the repository (see install.sh), in
// $GWNODE_DIR (default /opt/gwnode), so they are loaded from there explicitly.
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
export const GWNODE_DIR = process.env.GWNODE_DIR || "/opt/gwnode";
const requireFromInstall = createRequire(join(GWNODE_DIR, "package.json"));

/** The graphile-worker module installed in GWNODE_DIR. */
export async function loadGraphileWorker() {
  const entry = requireFromInstall.resolve("graphile-worker");
  return import(pathToFileURL(entry).href);
}

/** node-postgres, as installed alongside graphile-worker. */
export function loadPg() {
  return requireFromInstall("pg");
}

export function graphileWorkerVersion() {
  // graphile-worker's "exports" hides package.json; its entry is dist/index.js
  const entry = requireFromInstall.resolve("graphile-worker");
  return JSON.parse(readFileSync(join(dirname(entry), "..", "package.json"), "utf8")).version;
}

/** DATABASE_URL and SCHEMA from the environment. */
export function settings() {
  const connectionString = process.env.DATABASE_URL;
  if (!connectionString) {
    die(2, "DATABASE_URL must be set (e.g. postgres://postgres@127.0.0.1:55499/postgres)");
  }
  const schema = process.env.SCHEMA || "graphile_worker";
  return { connectionString, schema };
}

export function die(code, message) {
  process.stderr.write(`nodecompat: ${message}\n`);
  process.exit(code);
}

/**
 * A graphile-worker Logger that writes every message (debug included) to
 * stderr as `[graphile-worker LEVEL scope] message` and keeps them in
 * `entries` so the caller can inspect them afterwards.
 */
export function makeCapturingLogger(Logger, { quiet = false } = {}) {
  const entries = [];
  const logger = new Logger((scope) => (level, message, meta) => {
    const entry = { level, message, scope: { ...scope } };
    if (meta && meta.error) entry.error = String(meta.error?.stack || meta.error);
    entries.push(entry);
    if (!quiet) {
      const where = [scope.label, scope.workerId, scope.taskIdentifier, scope.jobId && `job ${scope.jobId}`]
        .filter(Boolean)
        .join(" ");
      process.stderr.write(`[graphile-worker ${level}${where ? " " + where : ""}] ${message}\n`);
    }
  });
  return { logger, entries };
}

/**
 * Also capture what graphile-worker (or pg) prints straight to the console
 * with console.warn / console.error / console.trace, which bypasses the logger.
 */
export function captureConsole(entries) {
  const saved = { warn: console.warn, error: console.error, trace: console.trace };
  for (const [name, level] of [["warn", "warning"], ["error", "error"], ["trace", "warning"]]) {
    console[name] = (...args) => {
      entries.push({ level, message: args.map(String).join(" "), scope: { label: `console.${name}` } });
      saved[name](...args);
    };
  }
  return () => Object.assign(console, saved);
}

const CATALOG_SQL = readFileSync(join(HERE, "catalog.sql"), "utf8").replaceAll(":'schema'", "$1");

/** The rows of catalog.sql for `schema`, each as "kind | name | detail". */
export async function catalogFacts(client, schema) {
  const { rows } = await client.query({ text: CATALOG_SQL, values: [schema], rowMode: "array" });
  return rows.map((r) => r.join(" | "));
}

export function sha256(lines) {
  return createHash("sha256").update(lines.join("\n")).digest("hex");
}

/**
 * The migrations table of `schema` (every column, as JSON, ordered by id),
 * or null when the table does not exist.
 */
export async function migrationRows(client, schema) {
  const pg = loadPg();
  const {
    rows: [{ exists }],
  } = await client.query("select to_regclass($1) is not null as exists", [
    `${pg.escapeIdentifier(schema)}.migrations`,
  ]);
  if (!exists) return null;
  const { rows } = await client.query(
    `select to_jsonb(m) as row from ${pg.escapeIdentifier(schema)}.migrations m order by m.id`,
  );
  return rows.map((r) => r.row);
}

/** Everything we compare before/after graphile-worker touches `schema`. */
export async function snapshot(client, schema) {
  const {
    rows: [{ exists }],
  } = await client.query("select exists(select 1 from pg_namespace where nspname = $1) as exists", [schema]);
  const migrations = await migrationRows(client, schema);
  const facts = await catalogFacts(client, schema);
  return {
    schemaExists: exists,
    migrations,
    facts,
    checksum: sha256(facts),
  };
}

export function describeMigrations(migrations) {
  if (migrations == null) return "no migrations table";
  if (migrations.length === 0) return "migrations table empty";
  const ids = migrations.map((m) => m.id);
  return `max(id)=${Math.max(...ids)} count(*)=${ids.length}`;
}

/** Lines only in `before` (prefixed "-") and only in `after` (prefixed "+"). */
export function diffFacts(before, after) {
  const b = new Set(before);
  const a = new Set(after);
  return [
    ...before.filter((l) => !a.has(l)).map((l) => `- ${l}`),
    ...after.filter((l) => !b.has(l)).map((l) => `+ ${l}`),
  ];
}

/**
 * Snapshot `schema`, run `fn`, snapshot again; returns the two snapshots and
 * what changed. Used to notice when a Node script migrated the schema.
 */
export async function withSchemaWatch(connectionString, schema, fn) {
  const pg = loadPg();
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const before = await snapshot(client, schema);
    let result, error;
    try {
      result = await fn();
    } catch (e) {
      error = e;
    }
    const after = await snapshot(client, schema);
    const migrationsChanged = JSON.stringify(before.migrations) !== JSON.stringify(after.migrations);
    const catalogChanged = before.checksum !== after.checksum;
    return { before, after, migrationsChanged, catalogChanged, result, error };
  } finally {
    await client.end();
  }
}

/** Prints a warning and returns true when the watched run changed the schema. */
export function reportSchemaChange(watch, schema) {
  if (!watch.migrationsChanged && !watch.catalogChanged) return false;
  process.stderr.write(
    `nodecompat WARNING: graphile-worker changed schema ${schema} while starting up ` +
      `(migrations: ${describeMigrations(watch.before.migrations)} -> ${describeMigrations(watch.after.migrations)}; ` +
      `catalog ${watch.catalogChanged ? "changed" : "unchanged"}). Run check-schema first to see why.\n`,
  );
  return true;
}

/** public."<schema>_nodecompat_log": which Node task ran with which payload. */
export function logTableName(schema) {
  return `${schema}_nodecompat_log`;
}
