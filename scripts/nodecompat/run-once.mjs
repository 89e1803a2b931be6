// run-once.mjs: run a Node graphile-worker with graphile-worker's runOnce on
// SCHEMA until no job for the given tasks is ready, then exit.
//
//   DATABASE_URL=... SCHEMA=... run.sh run-once [TASK ...] [--fail TASK] [--allow-migrate]
//
// TASK defaults to `node_task`. Every task handler records the job it got:
//   - one row in public."<SCHEMA>_nodecompat_log" (created if missing):
//       task text, payload json, ran_at timestamptz, job_id bigint,
//       attempts int, runner text ('node')
//   - one JSON line on stdout: {"ran_by":"node","task":...,"job_id":...,"payload":...}
// A task named with --fail (repeatable) records the job and then throws, so
// the job fails (and is retried later according to graphile-worker's rules).
//
// Exits 0 when runOnce finished, 1 when it failed. graphile-worker migrates
// the schema whenever it starts; if that changed anything, this script says
// so on stderr and exits 3 unless --allow-migrate is given.
import { parseArgs } from "node:util";
import {
  captureConsole,
  die,
  loadGraphileWorker,
  loadPg,
  logTableName,
  makeCapturingLogger,
  reportSchemaChange,
  settings,
  withSchemaWatch,
} from "./lib.mjs";

let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      fail: { type: "string", multiple: true, default: [] },
      "allow-migrate": { type: "boolean", default: false },
    },
  });
} catch (e) {
  die(2, `${e.message}\nusage: run-once.mjs [TASK ...] [--fail TASK] [--allow-migrate]`);
}
const tasks = args.positionals.length ? args.positionals : ["node_task"];
const failing = new Set(args.values.fail);

const { connectionString, schema } = settings();
const pg = loadPg();
const logTable = `public.${pg.escapeIdentifier(logTableName(schema))}`;

const setup = new pg.Client({ connectionString });
await setup.connect();
await setup.query(`create table if not exists ${logTable} (
  task text not null,
  payload json,
  ran_at timestamptz not null default now(),
  job_id bigint,
  attempts int,
  runner text not null default 'node'
)`);
await setup.end();

const { runOnce, Logger } = await loadGraphileWorker();
const { logger, entries } = makeCapturingLogger(Logger);

const ran = [];
const taskList = {};
for (const task of tasks) {
  taskList[task] = async (payload, helpers) => {
    const { job } = helpers;
    await helpers.withPgClient((client) =>
      client.query(
        `insert into ${logTable} (task, payload, job_id, attempts, runner) values ($1, $2::json, $3, $4, 'node')`,
        [task, JSON.stringify(payload ?? null), job.id, job.attempts],
      ),
    );
    const line = { ran_by: "node", schema, task, job_id: String(job.id), attempts: job.attempts, payload };
    ran.push(line);
    console.log(JSON.stringify(line));
    if (failing.has(task)) throw new Error(`nodecompat: task ${task} was asked to fail (--fail)`);
  };
}

const restoreConsole = captureConsole(entries);
const watch = await withSchemaWatch(connectionString, schema, () =>
  runOnce({ connectionString, schema, logger, taskList, noHandleSignals: true, concurrency: 1 }),
);
restoreConsole();

if (watch.error) die(1, `runOnce failed: ${watch.error.stack || watch.error.message}`);
process.stderr.write(`nodecompat run-once: ${ran.length} job(s) run for task(s) ${tasks.join(", ")} in schema ${schema}\n`);
const changed = reportSchemaChange(watch, schema);
process.exit(changed && !args.values["allow-migrate"] ? 3 : 0);
