import { createCoalescingQueue, type CoalescingQueue } from "./coalescing-queue.ts";
import { newDeployId } from "./deploy-id.ts";
import { runDeploy, type DeployRequest } from "./pipeline.ts";
import { isCheckout, openRepository, readHeadCommit } from "../git/repository.ts";
import { isReleaseLayout, releaseLayout } from "../publish/release-layout.ts";
import { readCurrentRelease } from "../publish/releases.ts";
import type { HookRun } from "../hooks/run-hook.ts";
import type { LoadedTarget } from "../config/loaded-target.ts";
import type { Logger } from "../log.ts";
import type { ProviderName } from "../providers/push-event.ts";
import type { DeployRecord, History } from "../state/history.ts";

export interface Submission extends DeployRequest {
  provider?: ProviderName | undefined;
  deliveryId?: string | undefined;
}

export interface TargetStatus {
  name: string;
  repo: string;
  refs: string;
  deployedCommit: string | undefined;
  lastDeploy: Pick<DeployRecord, "id" | "state" | "ref" | "commit" | "error" | "finishedAt"> | undefined;
}

export interface Deployer {
  /** Records and queues a deploy; returns at once, before any git work. */
  submit(target: string, submission: Submission): DeployRecord;
  status(): Promise<TargetStatus[]>;
  /** Resolves when no deploy runs or waits (tests, shutdown). */
  idle(): Promise<void>;
}

/** One coalescing queue per target: never two deploys of a target at once, the newest push always deployed. */
export function createDeployer(options: { targets: LoadedTarget[]; history: History; log: Logger }): Deployer {
  const { history, log } = options;
  const targets = new Map(options.targets.map((t) => [t.name, t]));
  const queues = new Map<string, CoalescingQueue<DeployRecord>>();

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
    const hooks: HookRun[] = [];
    try {
      const outcome = await runDeploy(target, record, { id: record.id, log, hooks });
      history.update(record.id, {
        state: "succeeded",
        commit: outcome.commit,
        previous: outcome.previous,
        timings: outcome.timings,
        release: outcome.release,
        hooks,
        finishedAt: new Date().toISOString(),
      });
      log.info("deploy succeeded", {
        deploy: record.id,
        target: target.name,
        previous: outcome.previous,
        commit: outcome.commit,
        changedPaths: outcome.changedPaths,
        release: outcome.release,
        reusedFiles: outcome.reusedFiles,
        bytesReceived: outcome.bytesReceived,
        timings: outcome.timings,
      });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      const code = (err as { code?: unknown }).code;
      // Published, then switched back by the health check.
      const rolledBack = code === "HEALTH_CHECK_FAILED";
      history.update(record.id, { state: rolledBack ? "rolled back" : "failed", error, hooks, finishedAt: new Date().toISOString() });
      log.error(rolledBack ? "deploy rolled back" : "deploy failed", { deploy: record.id, target: target.name, code, error });
    }
  }

  return {
    submit(targetName, submission) {
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
    },

    async status() {
      return Promise.all(
        [...targets.values()].map(async (t) => {
          const last = history.latest(t.name);
          return {
            name: t.name,
            repo: t.repo,
            refs: t.refs,
            deployedCommit: await deployedCommit(t.repo),
            lastDeploy: last && { id: last.id, state: last.state, ref: last.ref, commit: last.commit, error: last.error, finishedAt: last.finishedAt },
          };
        }),
      );
    },

    async idle() {
      await Promise.all([...queues.values()].map((q) => q.idle()));
    },
  };
}

async function deployedCommit(dir: string): Promise<string | undefined> {
  if (await isReleaseLayout(dir)) return (await readCurrentRelease(releaseLayout(dir)))?.commit;
  if (!(await isCheckout(dir))) return undefined;
  return readHeadCommit(await openRepository(dir));
}
