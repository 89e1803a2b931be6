// agent.mjs: the Node side of gworker's interop tests. The Go tests start it
// as a child process, one command per process:
//
//   node agent.mjs COMMAND 'JSON_CONFIG'
//
// It talks back in JSON lines on stdout ({"event": ...}); graphile-worker's
// own log goes to stderr, which the tests show when they fail. Commands that
// wait for the test (a "go" for a migration race, the end of a long-running
// worker) read lines on stdin; stdin closing means stop.
//
// The npm packages are not in the repository: they live in $GWORKER_NODE_DIR
// (see scripts/ensure-node.sh), and are loaded from there.
//
// Commands (config fields; every command takes connectionString and schema):
//
//   migrate  module?, stopAt?, waitForGo?
//            graphile-worker's runMigrations. module picks a release
//            installed beside 0.18 (see interop/node/package.json); stopAt
//            hides that release's migrations above a number, to leave a
//            schema at that ledger the way the release's own migrator does.
//            waitForGo prints "ready" and waits for a line on stdin first.
//   add      module?, steps: [{op: "add", identifier, payload, spec} |
//            {op: "sql", text}], run in order: makeWorkerUtils().addJob, or
//            a plain statement on a connection of our own.
//   worker   tasks: {identifier: {fail?: message}}, concurrency?,
//            pollInterval?, crontab?, once?, reportIdle?
//            A worker (run, or runOnce when once) with a handler per task
//            that reports each run ({"event": "run", ...} with start and end
//            in microseconds since the epoch, measured around one database
//            round trip) and then throws Error(fail) if asked to. A running
//            worker stops gracefully when stdin closes. It also reports
//            "listening" (its LISTEN is in place), the cron events, and
//            with reportIdle "idle" (a fetch found nothing).
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createInterface } from "node:readline";
import { EventEmitter } from "node:events";

const nodeDir = process.env.GWORKER_NODE_DIR;
if (!nodeDir) fatal("GWORKER_NODE_DIR is not set");
const requireFromInstall = createRequire(join(nodeDir, "package.json"));

const [command, rawConfig = "{}"] = process.argv.slice(2);
const config = JSON.parse(rawConfig);
const { connectionString, schema } = config;

function send(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function fatal(message) {
  process.stderr.write(`agent: ${message}\n`);
  process.exit(2);
}

// Microseconds since the epoch, on the same clock as Go's time.Now().
function nowMicros() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

// Lines on stdin, one promise at a time; null once stdin closed.
const stdinLines = (() => {
  let rl;
  let waiting = [];
  let buffered = [];
  let closed = false;
  return () => {
    if (!rl) {
      rl = createInterface({ input: process.stdin });
      rl.on("line", (line) => (waiting.length ? waiting.shift()(line) : buffered.push(line)));
      rl.on("close", () => {
        closed = true;
        for (const w of waiting.splice(0)) w(null);
      });
    }
    if (buffered.length) return Promise.resolve(buffered.shift());
    if (closed) return Promise.resolve(null);
    return new Promise((resolve) => waiting.push(resolve));
  };
})();

// The graphile-worker release named by module ("graphile-worker" is 0.18).
async function load(module = "graphile-worker") {
  return import(pathToFileURL(requireFromInstall.resolve(module)).href);
}

// A logger that sends everything to stderr with the release's own Logger.
function stderrLogger(Logger) {
  return new Logger((scope) => (level, message) => {
    if (level === "debug") return;
    process.stderr.write(`[graphile-worker ${level}${scope.label ? " " + scope.label : ""}] ${message}\n`);
  });
}

// Hides the migrations above stopAt from a CommonJS release's migrator. The
// releases before 0.18 keep their migrations in one exported object that
// the migrator reads when it runs, so deleting keys from it is enough.
function hideMigrationsAbove(module, stopAt) {
  const entry = requireFromInstall.resolve(module);
  const sqlPath = join(entry, "..", "generated", "sql.js");
  const { migrations } = requireFromInstall(sqlPath);
  for (const file of Object.keys(migrations)) {
    if (parseInt(file, 10) > stopAt) delete migrations[file];
  }
}

async function migrate() {
  const gw = await load(config.module);
  if (config.stopAt) hideMigrationsAbove(config.module, config.stopAt);
  const logger = stderrLogger(gw.Logger);
  if (config.waitForGo) {
    // Load everything before "ready", so that the race starts at "go".
    const { default: pg } = await import(pathToFileURL(requireFromInstall.resolve("pg")).href);
    const pool = new pg.Pool({ connectionString, max: 2 });
    pool.on("error", (e) => process.stderr.write(`agent: idle client error: ${e.message}\n`));
    pool.on("connect", (client) => client.on("error", (e) => process.stderr.write(`agent: client error: ${e.message}\n`)));
    const c = await pool.connect();
    c.release();
    send({ event: "ready" });
    await stdinLines();
    try {
      await gw.runMigrations({ pgPool: pool, schema, logger });
      send({ event: "migrated" });
    } catch (e) {
      send({ event: "error", message: e.message, code: e.code });
    } finally {
      await pool.end();
    }
    return;
  }
  try {
    await gw.runMigrations({ connectionString, schema, logger });
    send({ event: "migrated" });
  } catch (e) {
    send({ event: "error", message: e.message, code: e.code });
  }
}

async function add() {
  const gw = await load(config.module);
  const { default: pg } = await import(pathToFileURL(requireFromInstall.resolve("pg")).href);
  const client = new pg.Client({ connectionString });
  await client.connect();
  const utils = await gw.makeWorkerUtils({ connectionString, schema, logger: stderrLogger(gw.Logger) });
  try {
    for (const step of config.steps) {
      if (step.op === "sql") {
        await client.query(step.text);
        send({ event: "sql" });
        continue;
      }
      const spec = { ...step.spec };
      if (spec.runAt) spec.runAt = new Date(spec.runAt);
      // The add's commit falls between these two times.
      const beganAt = nowMicros();
      const job = await utils.addJob(step.identifier, step.payload, spec);
      send({ event: "added", id: String(job.id), beganAt, committedAt: nowMicros() });
    }
  } catch (e) {
    send({ event: "error", message: e.message, code: e.code });
  } finally {
    await utils.release();
    await client.end();
  }
}

async function worker() {
  const gw = await load();
  const taskList = {};
  for (const [identifier, behaviour] of Object.entries(config.tasks)) {
    taskList[identifier] = async (payload, helpers) => {
      const start = nowMicros();
      // One round trip inside the handler, so that a run is a span of time
      // in which a second job of the same named queue must not start.
      await helpers.query("select 1");
      const end = nowMicros();
      const { job } = helpers;
      send({ event: "run", runner: "node", id: String(job.id), task: identifier, attempts: job.attempts, payload, start, end });
      if (behaviour.fail) throw new Error(behaviour.fail);
    };
  }
  const events = new EventEmitter();
  events.on("pool:listen:success", () => send({ event: "listening" }));
  if (config.reportIdle) events.on("worker:getJob:empty", () => send({ event: "idle" }));
  for (const name of ["cron:started", "cron:backfill", "cron:scheduled"]) {
    events.on(name, (e) => send({ event: name, timestamp: e.timestamp ?? e.start ?? null }));
  }
  const options = {
    connectionString,
    schema,
    taskList,
    concurrency: config.concurrency ?? 1,
    pollInterval: config.pollInterval ?? 2000,
    crontab: config.crontab,
    noHandleSignals: true,
    logger: stderrLogger(gw.Logger),
    events,
  };
  if (config.once) {
    await gw.runOnce(options);
    send({ event: "stopped" });
    return;
  }
  const runner = await gw.run(options);
  send({ event: "started" });
  while ((await stdinLines()) !== null) {
    // Any line is ignored; the end of stdin stops the worker.
  }
  await runner.stop();
  send({ event: "stopped" });
}

const commands = { migrate, add, worker };
if (!commands[command]) fatal(`unknown command ${JSON.stringify(command)}; want one of ${Object.keys(commands).join(", ")}`);
try {
  await commands[command]();
} catch (e) {
  send({ event: "error", message: e.message, code: e.code });
  process.exitCode = 1;
}
