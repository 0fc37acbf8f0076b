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
import type { DeployOutcome, RunDeploy } from "./pipeline.ts";
import { decodeError, encodeTarget, type FromWorker, type ToWorker } from "./thread-messages.ts";
import { createJobThread } from "../util/job-thread.ts";

export interface DeployThread {
  /** Same contract as pipeline.ts's runDeploy: context callbacks fire here, errors arrive as their own class. */
  runDeploy: RunDeploy;
  /** Starts the thread ahead of the first deploy; it keeps no process alive while idle. */
  warm(): void;
  /** Ends the thread; a deploy still running there fails. */
  stop(): void;
}

export function createDeployThread(): DeployThread {
  const thread = createJobThread("deploy/deploy-worker.ts", "deploy");
  return {
    warm: thread.warm,
    runDeploy(target, request, context) {
      return thread.run<DeployOutcome, FromWorker>(
        (job) => ({ type: "run", job, target: encodeTarget(target), request, id: context.id }) satisfies ToWorker,
        (data, settle) => {
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
              context.hooks?.push(...data.hooks);
              settle.resolve(data.outcome);
              return;
            case "failed":
              context.hooks?.push(...data.hooks);
              settle.reject(decodeError(data.error));
          }
        },
      );
    },
    stop() {
      thread.stop("hooksd is stopping");
    },
  };
}
