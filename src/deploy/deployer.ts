import { createCoalescingQueue, type CoalescingQueue } from "./coalescing-queue.ts";
import { newDeployId } from "./deploy-id.ts";
import { classifyFailure } from "./failure.ts";
import { runDeploy, type DeployOutcome, type DeployRequest } from "./pipeline.ts";
import { backoffDelay, DEFAULT_RETRY, interruptibleDelay, type RetryPolicy } from "./retry.ts";
import { GitError } from "../git/git-error.ts";
import { isCheckout, openRepository, readHeadCommit } from "../git/repository.ts";
import type { LoadedTarget } from "../config/loaded-target.ts";
import type { Logger } from "../log.ts";
import type { ProviderName } from "../providers/push-event.ts";
import type { DeployRecord, History } from "../state/history.ts";

export interface Submission extends DeployRequest {
  provider?: ProviderName | undefined;
  deliveryId?: string | undefined;
}

interface QueuedDeploy {
  target: LoadedTarget;
  record: DeployRecord;
  /** Commits of the same ref whose deploys this one replaced in the queue. */
  supersededCommits: string[];
}

export interface TargetStatus {
  name: string;
  repo: string;
  refs: string;
  deployedCommit: string | undefined;
  lastDeploy: Pick<DeployRecord, "id" | "state" | "ref" | "commit" | "error" | "code" | "attempts" | "reason" | "finishedAt"> | undefined;
}

export interface Deployer {
  /** Records and queues a deploy; returns at once, before any git work. */
  submit(target: string, submission: Submission): DeployRecord;
  status(): Promise<TargetStatus[]>;
  /** Resolves when no deploy runs or waits (tests, shutdown). */
  idle(): Promise<void>;
}

/**
 * One coalescing queue per checkout: never two deploys into one directory at
 * once, the newest push always deployed. `targets` may be a function so that
 * a reloaded configuration is seen; a queued deploy keeps the target it was
 * submitted with, so a reload never changes a deploy under way.
 */
export function createDeployer(options: {
  targets: readonly LoadedTarget[] | (() => readonly LoadedTarget[]);
  history: History;
  log: Logger;
  /** How failures of the remote are retried; tests shorten the delays. */
  retry?: Partial<RetryPolicy> | undefined;
}): Deployer {
  const { history, log } = options;
  const currentTargets = typeof options.targets === "function" ? options.targets : () => options.targets as readonly LoadedTarget[];
  const retry: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };
  /** Per checkout, the deploy waiting to retry and how to wake it when a newer push arrives. */
  const backoffs = new Map<string, { item: QueuedDeploy; interrupt(): void }>();
  /**
   * Checkouts seen to exist. One that disappears later is not silently
   * recreated by a "first deploy": DIR may be a mount point whose file system
   * went away, and the site would then be written onto the wrong disk.
   */
  const checkouts = new Set<string>();
  for (const t of currentTargets()) void isCheckout(t.repo).then((yes) => yes && checkouts.add(t.repo));

  async function deployOnce(target: LoadedTarget, request: DeployRequest): Promise<DeployOutcome> {
    if (await isCheckout(target.repo)) checkouts.add(target.repo);
    else if (checkouts.has(target.repo)) {
      throw new GitError("NOT_A_CHECKOUT", `${target.repo} was a checkout and is gone (deleted, or its file system unmounted?); hooksd does not recreate it: restore it, or restart hooksd to deploy into an empty directory`);
    }
    return runDeploy(target, request);
  }
  const queues = new Map<string, CoalescingQueue<QueuedDeploy>>();

  function queueFor(repo: string) {
    let queue = queues.get(repo);
    if (!queue) {
      queue = createCoalescingQueue(
        ({ target, record, supersededCommits }) => execute(target, record, supersededCommits),
        ({ target, record, supersededCommits }, replacement) => {
          // Deliveries can arrive out of order: the push that replaces this one
          // may be older. It carries this commit along, and the pipeline deploys
          // whichever of them is newest once their history is fetched.
          if (record.commit && record.ref === replacement.record.ref) {
            replacement.supersededCommits.push(record.commit, ...supersededCommits);
          }
          const reason = "a later delivery arrived before this deploy started";
          history.update(record.id, { state: "superseded", reason, finishedAt: new Date().toISOString() });
          log.info("deploy superseded", { deploy: record.id, target: target.name, reason });
        },
      );
      queues.set(repo, queue);
    }
    return queue;
  }

  async function execute(target: LoadedTarget, record: DeployRecord, supersededCommits: string[]): Promise<void> {
    history.update(record.id, { state: "running", startedAt: new Date().toISOString() });
    log.info("deploy started", { deploy: record.id, target: target.name, ref: record.ref, commit: record.commit });
    for (let attempt = 1; ; attempt++) {
      let outcome: DeployOutcome;
      try {
        outcome = await deployOnce(target, { ref: record.ref, commit: record.commit, supersededCommits });
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        const { code, retryable } = classifyFailure(err);
        if (!retryable || attempt >= retry.attempts) {
          history.update(record.id, { state: "failed", error, code, attempts: tries(attempt), finishedAt: new Date().toISOString() });
          log.error("deploy failed", { deploy: record.id, target: target.name, code, attempts: attempt, error });
          return;
        }
        const delayMs = backoffDelay(retry, attempt);
        history.update(record.id, { error, code, attempts: attempt });
        log.warn("deploy attempt failed; retrying", { deploy: record.id, target: target.name, code, attempt, delayMs, error });
        // A push that arrives during the wait deploys instead (it carries this
        // commit along, see submit): retrying an older push first only delays it.
        const delay = interruptibleDelay(delayMs);
        backoffs.set(target.repo, { item: { target, record, supersededCommits }, interrupt: delay.interrupt });
        const waited = await delay.wait;
        backoffs.delete(target.repo);
        if (waited === "interrupted") {
          const reason = `a later delivery arrived while this deploy waited to retry after ${code}`;
          history.update(record.id, { state: "superseded", reason, finishedAt: new Date().toISOString() });
          log.info("deploy superseded", { deploy: record.id, target: target.name, reason });
          return;
        }
        continue;
      }
      if (outcome.superseded) {
        history.update(record.id, { state: "superseded", reason: outcome.superseded, previous: outcome.previous, timings: outcome.timings, attempts: tries(attempt), finishedAt: new Date().toISOString() });
        log.info("deploy superseded", { deploy: record.id, target: target.name, commit: record.commit, deployed: outcome.previous, reason: outcome.superseded });
        return;
      }
      history.update(record.id, {
        state: "succeeded",
        commit: outcome.commit,
        previous: outcome.previous,
        timings: outcome.timings,
        // An attempt that failed before this one succeeded is history, not the outcome.
        error: undefined,
        code: undefined,
        attempts: tries(attempt),
        finishedAt: new Date().toISOString(),
      });
      log.info("deploy succeeded", {
        deploy: record.id,
        target: target.name,
        previous: outcome.previous,
        commit: outcome.commit,
        attempts: tries(attempt),
        changedPaths: outcome.changedPaths,
        bytesReceived: outcome.bytesReceived,
        timings: outcome.timings,
      });
      return;
    }
  }

  return {
    submit(targetName, submission) {
      const target = currentTargets().find((t) => t.name === targetName);
      if (!target) throw new Error(`unknown target ${targetName}`);
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
      const item: QueuedDeploy = { target, record, supersededCommits: [] };
      const retrying = backoffs.get(target.repo);
      if (retrying) {
        const { record: old, supersededCommits: carried } = retrying.item;
        if (old.commit && old.ref === record.ref) item.supersededCommits.push(old.commit, ...carried);
        retrying.interrupt();
      }
      queueFor(target.repo).push(item);
      return record;
    },

    async status() {
      return Promise.all(
        currentTargets().map(async (t) => {
          const last = history.latest(t.name);
          return {
            name: t.name,
            repo: t.repo,
            refs: t.refs,
            deployedCommit: await deployedCommit(t.repo),
            lastDeploy: last && {
              id: last.id,
              state: last.state,
              ref: last.ref,
              commit: last.commit,
              error: last.error,
              code: last.code,
              attempts: last.attempts,
              reason: last.reason,
              finishedAt: last.finishedAt,
            },
          };
        }),
      );
    },

    async idle() {
      await Promise.all([...queues.values()].map((q) => q.idle()));
    },
  };
}

/** Attempts are recorded only when there was more than one, so a plain deploy's record stays as it was. */
function tries(attempt: number): number | undefined {
  return attempt > 1 ? attempt : undefined;
}

async function deployedCommit(dir: string): Promise<string | undefined> {
  if (!(await isCheckout(dir))) return undefined;
  return readHeadCommit(await openRepository(dir));
}
