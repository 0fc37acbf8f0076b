/**
 * Runs deploys on a thread of their own, so that the daemon's thread only
 * answers HTTP. Measured (docs/performance.md, section 8): on one thread a
 * cold deploy held the event loop for up to 160 ms at a time (tree diff,
 * index and .idx writing, pack scanning of 50k objects), and Bun does
 * fs.promises writes and zlib stream work on the calling thread; webhook p99
 * went to tens of ms. `hooksd serve` starts the thread once it listens
 * (warm()), so that the first deploy does not wait for it to load its modules
 * (~60 ms of a 1k-file cold deploy; it costs ~7 MB of idle RSS), and it then
 * stays, keeping its open packs warm.
 */
import { fileURLToPath } from "node:url";
import type { DeployContext, DeployOutcome, RunDeploy } from "./pipeline.ts";
import { decodeError, encodeTarget, type FromWorker, type ToWorker } from "./thread-messages.ts";

/**
 * build.ts compiles deploy-worker.ts as a second entry point; the executable
 * serves it from its embedded file system, relative to src/. From source it
 * lies beside this file (a relative string would resolve against the cwd).
 */
const WORKER = import.meta.url.startsWith("file:///$bunfs/") ? "./deploy/deploy-worker.ts" : fileURLToPath(new URL("./deploy-worker.ts", import.meta.url));

export interface DeployThread {
  /** Same contract as pipeline.ts's runDeploy: context callbacks fire here, errors arrive as their own class. */
  runDeploy: RunDeploy;
  /** Starts the thread ahead of the first deploy; it keeps no process alive while idle. */
  warm(): void;
  /** Ends the thread; a deploy still running there fails. */
  stop(): void;
}

interface Job {
  context: DeployContext;
  resolve(outcome: DeployOutcome): void;
  reject(err: Error): void;
}

export function createDeployThread(): DeployThread {
  let worker: Worker | undefined;
  const jobs = new Map<number, Job>();
  let nextJob = 1;

  // A thread that died (a crash, memory exhausted) fails what it was running; the next deploy starts a new one.
  function lost(reason: string): void {
    worker = undefined;
    for (const job of jobs.values()) job.reject(new Error(`the deploy thread stopped: ${reason}`));
    jobs.clear();
  }

  function start(): Worker {
    const w = new Worker(WORKER, { smol: true });
    w.onmessage = ({ data }: MessageEvent<FromWorker>) => {
      const job = jobs.get(data.job);
      if (!job) return;
      const { context } = job;
      switch (data.type) {
        case "log":
          context.log[data.level](data.msg, data.fields);
          return;
        case "phase":
          context.onPhase?.(data.phase);
          return;
        case "fetched":
          context.onFetched?.(data.commit);
          return;
        case "done":
        case "failed":
          jobs.delete(data.job);
          context.hooks?.push(...data.hooks);
          if (jobs.size === 0) w.unref();
          if (data.type === "done") job.resolve(data.outcome);
          else job.reject(decodeError(data.error));
      }
    };
    w.onerror = (event) => {
      if (worker === w) lost(event.message);
      w.terminate();
    };
    w.addEventListener("close", () => worker === w && lost("it exited"));
    return w;
  }

  return {
    warm() {
      (worker ??= start()).unref();
    },
    runDeploy(target, request, context) {
      worker ??= start();
      const w = worker;
      const job = nextJob++;
      return new Promise<DeployOutcome>((resolve, reject) => {
        jobs.set(job, { context, resolve, reject });
        // Only a running deploy keeps the process alive, as it would on the main thread.
        w.ref();
        w.postMessage({ type: "run", job, target: encodeTarget(target), request, id: context.id } satisfies ToWorker);
      });
    },
    stop() {
      const w = worker;
      if (!w) return;
      lost("hooksd is stopping");
      w.terminate();
    },
  };
}
