// add-job.mjs: add one job to SCHEMA with Node graphile-worker's
// makeWorkerUtils().addJob, as a Node application would.
//
//   DATABASE_URL=... SCHEMA=... run.sh add-job TASK [PAYLOAD_JSON] [options]
//
// Options (all optional, mapped to graphile-worker's TaskSpec):
//   --queue NAME            queueName
//   --run-at ISO8601        runAt
//   --priority N            priority
//   --max-attempts N        maxAttempts
//   --job-key KEY           jobKey
//   --job-key-mode MODE     jobKeyMode (replace | preserve_run_at | unsafe_dedupe)
//   --flags a,b,c           flags
//   --allow-migrate         do not fail when graphile-worker migrated the schema
//
// Prints the added job (as returned by graphile-worker) as one JSON line on
// stdout. graphile-worker migrates the schema whenever it starts; if that
// changed anything, this script says so on stderr and exits 3 (after the job
// was added) unless --allow-migrate is given.
import { parseArgs } from "node:util";
import {
  captureConsole,
  die,
  loadGraphileWorker,
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
      queue: { type: "string" },
      "run-at": { type: "string" },
      priority: { type: "string" },
      "max-attempts": { type: "string" },
      "job-key": { type: "string" },
      "job-key-mode": { type: "string" },
      flags: { type: "string" },
      "allow-migrate": { type: "boolean", default: false },
    },
  });
} catch (e) {
  die(2, `${e.message}\nusage: add-job.mjs TASK [PAYLOAD_JSON] [--queue Q] [--run-at ISO] [--priority N] [--max-attempts N] [--job-key K] [--job-key-mode M] [--flags a,b] [--allow-migrate]`);
}
const [task, payloadText = "{}", ...extra] = args.positionals;
if (!task || extra.length) die(2, "usage: add-job.mjs TASK [PAYLOAD_JSON] [options]");

let payload;
try {
  payload = JSON.parse(payloadText);
} catch (e) {
  die(2, `payload is not valid JSON: ${e.message}`);
}

const int = (name) => {
  const v = args.values[name];
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) die(2, `--${name} must be an integer, got ${JSON.stringify(v)}`);
  return Number(v);
};
const spec = {};
if (args.values.queue !== undefined) spec.queueName = args.values.queue;
if (args.values["run-at"] !== undefined) {
  const d = new Date(args.values["run-at"]);
  if (Number.isNaN(d.getTime())) die(2, `--run-at is not a date: ${args.values["run-at"]}`);
  spec.runAt = d;
}
if (args.values.priority !== undefined) spec.priority = int("priority");
if (args.values["max-attempts"] !== undefined) spec.maxAttempts = int("max-attempts");
if (args.values["job-key"] !== undefined) spec.jobKey = args.values["job-key"];
if (args.values["job-key-mode"] !== undefined) spec.jobKeyMode = args.values["job-key-mode"];
if (args.values.flags !== undefined) spec.flags = args.values.flags.split(",").filter(Boolean);

const { connectionString, schema } = settings();
const { makeWorkerUtils, Logger } = await loadGraphileWorker();
const { logger, entries } = makeCapturingLogger(Logger);
const restoreConsole = captureConsole(entries);

const watch = await withSchemaWatch(connectionString, schema, async () => {
  const utils = await makeWorkerUtils({ connectionString, schema, logger });
  try {
    return await utils.addJob(task, payload, spec);
  } finally {
    await utils.release();
  }
});
restoreConsole();

if (watch.error) die(1, `addJob failed: ${watch.error.stack || watch.error.message}`);
const job = watch.result;
console.log(JSON.stringify({ added_by: "node", schema, ...job }));

const changed = reportSchemaChange(watch, schema);
process.exit(changed && !args.values["allow-migrate"] ? 3 : 0);
