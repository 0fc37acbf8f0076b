import { createCoalescingQueue, type CoalescingQueue } from "./coalescing-queue.ts";
import { newDeployId } from "./deploy-id.ts";
import { runDeploy, type DeployRequest } from "./pipeline.ts";
import type { LoadedTarget } from "../config/loaded-target.ts";
import type { Logger } from "../log.ts";
import type { ProviderName } from "../providers/push-event.ts";
import type { DeployRecord, History } from "../state/history.ts";
import { readTargetStatus, type TargetStatus } from "../state/target-status.ts";

export type { TargetStatus };

export interface Submission extends DeployRequest {
  provider?: ProviderName | undefined;
  deliveryId?: string | undefined;
}

export interface Deployer {
  /** Records and queues a deploy; returns at once, before any git work. */
  submit(target: string, submission: Submission): DeployRecord;
  status(): Promise<TargetStatus[]>;
  /** Resolves when no deploy runs or waits (tests, shutdown). */
  idle(): Promise<void>;
  /** False once shutdown() began: new deliveries are refused. */
  readonly accepting: boolean;
  /**
   * Start-up only: runs what a previous process owed. Queued records run;
   * records left `running` (the process died mid-deploy) are marked failed and
   * redone. Returns the records that will run.
   */
  recover(): DeployRecord[];
  /**
   * Stops starting deploys, waits up to `graceMs` for the running ones, and
   * leaves waiting ones `queued` in the history for the next start. True when
   * nothing was still running at the end.
   */
  shutdown(graceMs: number): Promise<boolean>;
}

/** One coalescing queue per target: never two deploys of a target at once, the newest push always deployed. */
export function createDeployer(options: { targets: LoadedTarget[]; history: History; log: Logger }): Deployer {
  const { history, log } = options;
  const targets = new Map(options.targets.map((t) => [t.name, t]));
  const queues = new Map<string, CoalescingQueue<DeployRecord>>();
  let accepting = true;

  for (const target of targets.values()) {
    const run = (record: DeployRecord) => execute(target, record);
    const supersede = (record: DeployRecord) => {
      history.update(record.id, { state: "superseded", finishedAt: new Date().toISOString() });
      log.info("deploy superseded", { deploy: record.id, target: target.name });
    };
    queues.set(target.name, createCoalescingQueue(run, supersede));
  }

  async function execute(target: LoadedTarget, record: DeployRecord): Promise<void> {
    history.update(record.id, { state: "running", startedAt: new Date().toISOString() });
    log.info("deploy started", { deploy: record.id, target: target.name, ref: record.ref, commit: record.commit });
    try {
      // A deploy of "the tip" is pinned once fetched, so a redo after a crash converges on the same commit.
      const outcome = await runDeploy(target, record, undefined, (commit) => history.update(record.id, { commit }));
      history.update(record.id, {
        state: "succeeded",
        commit: outcome.commit,
        previous: outcome.previous,
        timings: outcome.timings,
        finishedAt: new Date().toISOString(),
      });
      log.info("deploy succeeded", {
        deploy: record.id,
        target: target.name,
        previous: outcome.previous,
        commit: outcome.commit,
        changedPaths: outcome.changedPaths,
        bytesReceived: outcome.bytesReceived,
        timings: outcome.timings,
      });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      const code = (err as { code?: unknown }).code;
      history.update(record.id, { state: "failed", error, finishedAt: new Date().toISOString() });
      log.error("deploy failed", { deploy: record.id, target: target.name, code, error });
    }
  }

  function submit(targetName: string, submission: Submission): DeployRecord {
    const queue = queues.get(targetName);
    if (!queue) throw new Error(`unknown target ${targetName}`);
    const record: DeployRecord = {
      id: newDeployId(),
      target: targetName,
      provider: submission.provider,
      deliveryId: submission.deliveryId,
      ref: submission.ref,
      commit: submission.commit,
      previous: undefined,
      state: "queued",
      error: undefined,
      queuedAt: new Date().toISOString(),
      startedAt: undefined,
      finishedAt: undefined,
      timings: {},
    };
    history.add(record);
    queue.push(record);
    return record;
  }

  function recover(): DeployRecord[] {
    const owed: DeployRecord[] = [];
    for (const record of history.unfinished()) {
      const queue = queues.get(record.target);
      // Another process (a `hooksd deploy`, a daemon with other targets) may own it.
      if (!queue) continue;
      if (record.state === "queued") {
        log.info("deploy resumed", { deploy: record.id, target: record.target, ref: record.ref, commit: record.commit });
        queue.push(record);
        owed.push(record);
        continue;
      }
      // Left `running`: the process died mid-deploy and the checkout may be
      // half-written. The in-place update moves HEAD last and counts files
      // already equal to their target as clean, so only the SAME commit is
      // safe to apply now; it is pushed before any queued record (oldest
      // first) and, once running, is never superseded.
      const redo = submit(record.target, { ref: record.ref, commit: record.commit, provider: record.provider, deliveryId: record.deliveryId });
      history.update(record.id, {
        state: "failed",
        error: `interrupted: hooksd stopped while this deploy was running (crash, kill or shutdown timeout); redone as deploy ${redo.id}`,
        finishedAt: new Date().toISOString(),
      });
      log.warn("deploy interrupted, redoing it", { deploy: record.id, redo: redo.id, target: record.target, commit: record.commit });
      owed.push(redo);
    }
    return owed;
  }

  return {
    submit,
    recover,

    status: () => Promise.all([...targets.values()].map((t) => readTargetStatus(t, history))),

    async idle() {
      await Promise.all([...queues.values()].map((q) => q.idle()));
    },

    get accepting() {
      return accepting;
    },

    async shutdown(graceMs) {
      accepting = false;
      for (const queue of queues.values()) queue.close();
      const running = Promise.all([...queues.values()].map((q) => q.idle())).then(() => true);
      let timer: Timer | undefined;
      const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, graceMs, false)));
      const finished = await Promise.race([running, timeout]);
      clearTimeout(timer);
      return finished;
    },
  };
}
