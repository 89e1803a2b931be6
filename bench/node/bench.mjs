// bench.mjs: Node graphile-worker's side of gworker's benchmark
// (bench/README.md). One process; the orchestrator (go run ./bench) runs it:
//
//   GWNODE_DIR=DIR DATABASE_URL=URL SCHEMA=S node bench.mjs MODE [N] [--default]
//
// GWNODE_DIR holds graphile-worker and pg (scripts/ensure-node.sh).
// Modes:
//   migrate       install the schema (graphile-worker's own migrations)
//   drain         runOnce over every job of task "noop"; prints
//                 jobs=N seconds=S jobs_per_sec=R, timed from the worker
//                 pool's creation (after connecting and the migration check)
//                 to runOnce's end
//   insert N      one workerUtils.addJobs call with N "noop" specs; prints
//                 jobs=N seconds=S jobs_per_sec=R
//   latency N     N sequential add_job calls, each awaited until its task
//                 starts (after 50 warm-up jobs), as perfTest/latencyTest.js
//                 does; prints latency_ms=a,b,...
//
// Worker settings are graphile-worker's perfTest ones (perfTest/graphile.config.js):
// concurrency 24, localQueue {size 500, refetchDelay 10ms}, complete/fail
// batch delays 0, maxPoolSize 25. With --default, latency runs with
// graphile-worker's defaults instead (concurrency 1, no local queue, no
// batching), the configuration of perfTest/latencyTest.js.
import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.env.GWNODE_DIR || "/opt/gwnode";
const requireFromInstall = createRequire(join(dir, "package.json"));
const gw = await import(pathToFileURL(requireFromInstall.resolve("graphile-worker")).href);
const pg = requireFromInstall("pg");

const connectionString = process.env.DATABASE_URL;
const schema = process.env.SCHEMA || "graphile_worker";
if (!connectionString) {
  console.error("bench.mjs: DATABASE_URL must be set");
  process.exit(2);
}
const [mode, nArg, ...flags] = process.argv.slice(2);
const n = Number(nArg || 0);
const useDefaults = flags.includes("--default");

// Warnings and errors only; per-job info lines would cost CPU.
const logger = new gw.Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`[graphile-worker ${level}] ${message}`);
});

const perfTest = {
  concurrency: 24,
  maxPoolSize: 25,
  preset: {
    worker: {
      localQueue: { size: 500, refetchDelay: { durationMs: 10 } },
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
    },
  },
};
const base = { connectionString, schema, logger, noHandleSignals: true };
const options = useDefaults ? base : { ...base, ...perfTest };

const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const report = (jobs, s) =>
  console.log(`jobs=${jobs} seconds=${s.toFixed(3)} jobs_per_sec=${Math.round(jobs / s)}`);

switch (mode) {
  case "migrate": {
    await gw.runMigrations(base);
    break;
  }
  case "drain": {
    let ran = 0;
    let t0 = null;
    const events = new EventEmitter();
    events.on("pool:create", () => {
      t0 = process.hrtime.bigint();
    });
    await gw.runOnce({ ...options, events }, {
      noop: async () => {
        ran++;
      },
    });
    report(ran, seconds(t0));
    break;
  }
  case "insert": {
    const utils = await gw.makeWorkerUtils(base);
    try {
      const specs = [];
      for (let i = 0; i < n; i++) specs.push({ identifier: "noop", payload: { i } });
      const t0 = process.hrtime.bigint();
      const jobs = await utils.addJobs(specs);
      const s = seconds(t0);
      if (jobs.length !== n) throw new Error(`addJobs returned ${jobs.length} jobs, want ${n}`);
      report(n, s);
    } finally {
      await utils.release();
    }
    break;
  }
  case "latency": {
    const pool = new pg.Pool({ connectionString, max: 2 });
    const waiting = new Map();
    const runner = await gw.run(options, {
      latency: async ({ id }) => {
        const w = waiting.get(id);
        if (w) w(process.hrtime.bigint());
      },
    });
    const client = await pool.connect();
    const addJob = `select ${pg.escapeIdentifier(schema)}.add_job('latency', json_build_object('id', $1::int))`;
    const one = async (id) => {
      const started = new Promise((resolve) => waiting.set(id, resolve));
      const t0 = process.hrtime.bigint();
      await client.query(addJob, [id]);
      const t1 = await started;
      waiting.delete(id);
      return Number(t1 - t0) / 1e6;
    };
    try {
      for (let i = 0; i < 50; i++) await one(-1 - i);
      await new Promise((r) => setTimeout(r, 500));
      const ms = [];
      for (let i = 0; i < n; i++) ms.push((await one(i)).toFixed(3));
      console.log(`latency_ms=${ms.join(",")}`);
    } finally {
      client.release();
      await runner.stop();
      await pool.end();
    }
    break;
  }
  default:
    console.error(`bench.mjs: unknown mode ${JSON.stringify(mode)}: want migrate, drain, insert or latency`);
    process.exit(2);
}
