import { createCoalescingQueue, type CoalescingQueue } from "./coalescing-queue.ts";
import { newDeployId } from "./deploy-id.ts";
import { classifyFailure } from "./failure.ts";
import { runDeploy, type RunDeploy, type DeployContext, type DeployOutcome, type DeployRequest, type InterruptedDeploy } from "./pipeline.ts";
import { backoffDelay, DEFAULT_RETRY, interruptibleDelay, type RetryPolicy } from "./retry.ts";
import { GitError } from "../git/git-error.ts";
import { isCheckout } from "../git/repository.ts";
import { combinedHookOutput } from "../hooks/hook-output.ts";
import type { HookRun } from "../hooks/run-hook.ts";
import type { LoadedTarget } from "../config/loaded-target.ts";
import type { Logger } from "../log.ts";
import type { ProviderName } from "../providers/push-event.ts";
import type { DeployRecord, History } from "../state/history.ts";
import { readTargetStatus, type TargetStatus } from "../state/target-status.ts";
import { errorMessage } from "../util/error-message.ts";

export type { TargetStatus };

export interface Submission extends DeployRequest {
  provider?: ProviderName | undefined;
  deliveryId?: string | undefined;
}

interface QueuedDeploy {
  target: LoadedTarget;
  record: DeployRecord;
  /** Commits of the same ref whose deploys this one replaced in the queue. */
  supersededCommits: string[];
  /** Start-up recovery: the interrupted deploy this one redoes. */
  redoes?: InterruptedDeploy | undefined;
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
  /** Called after each deploy ends, whatever its outcome (the systemd status line follows it). */
  onSettled?: (record: DeployRecord) => void;
  /** How failures of the remote are retried; tests shorten the delays. */
  retry?: Partial<RetryPolicy> | undefined;
  /** Where the pipeline runs: here by default; the daemon passes its deploy thread's (deploy-thread.ts). */
  runDeploy?: RunDeploy | undefined;
}): Deployer {
  const { history, log, onSettled } = options;
  const currentTargets = typeof options.targets === "function" ? options.targets : () => options.targets as readonly LoadedTarget[];
  const retry: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };
  const run = options.runDeploy ?? runDeploy;
  /** Per checkout, the deploy waiting to retry and how to end the wait early. */
  const backoffs = new Map<string, { item: QueuedDeploy; interrupt(why: "newer push" | "shutdown"): void }>();
  /**
   * Checkouts seen to exist. One that disappears later is not silently
   * recreated by a "first deploy": DIR may be a mount point whose file system
   * went away, and the site would then be written onto the wrong disk.
   */
  const checkouts = new Set<string>();
  for (const t of currentTargets()) void isCheckout(t.repo).then((yes) => yes && checkouts.add(t.repo));

  async function deployOnce(target: LoadedTarget, request: DeployRequest, context: DeployContext): Promise<DeployOutcome> {
    if (await isCheckout(target.repo)) checkouts.add(target.repo);
    else if (checkouts.has(target.repo)) {
      throw new GitError("NOT_A_CHECKOUT", `${target.repo} was a checkout and is gone (deleted, or its file system unmounted?); hooksd does not recreate it: restore it, or restart hooksd to deploy into an empty directory`);
    }
    return run(target, request, context);
  }
  /**
   * A deploy replaced before it ran (in the queue, or while waiting to retry)
   * hands on what it owed. Deliveries can arrive out of order: the push that
   * replaces it may be older, so it carries the replaced commit along and the
   * pipeline deploys whichever is newest once their history is fetched. What a
   * replaced redo had to clear up, the deploy replacing it does.
   */
  function carryOver(replaced: QueuedDeploy, replacement: QueuedDeploy): void {
    replacement.redoes ??= replaced.redoes;
    if (replaced.record.commit && replaced.record.ref === replacement.record.ref) {
      replacement.supersededCommits.push(replaced.record.commit, ...replaced.supersededCommits);
    }
  }

  function supersede({ target, record }: Pick<QueuedDeploy, "target" | "record">, reason: string, patch: Partial<DeployRecord> = {}): void {
    history.update(record.id, { state: "superseded", reason, ...patch, finishedAt: new Date().toISOString() });
    log.info("deploy superseded", { deploy: record.id, target: target.name, commit: record.commit, deployed: patch.previous, reason });
  }

  const queues = new Map<string, CoalescingQueue<QueuedDeploy>>();
  let accepting = true;

  function queueFor(repo: string) {
    let queue = queues.get(repo);
    if (!queue) {
      queue = createCoalescingQueue(
        ({ target, record, supersededCommits, redoes }) => execute(target, record, supersededCommits, redoes),
        (replaced, replacement) => {
          carryOver(replaced, replacement);
          supersede(replaced, "a later delivery arrived before this deploy started");
        },
      );
      if (!accepting) queue.close();
      queues.set(repo, queue);
    }
    return queue;
  }

  async function execute(target: LoadedTarget, record: DeployRecord, supersededCommits: string[], redoes: InterruptedDeploy | undefined): Promise<void> {
    history.update(record.id, { state: "running", startedAt: new Date().toISOString() });
    log.info("deploy started", { deploy: record.id, target: target.name, ref: record.ref, commit: record.commit });
    const hooks: HookRun[] = [];
    try {
      // The commit is recorded before the work tree changes, so a redo after a crash converges on that same commit.
      const pin = (commit: string) => void history.update(record.id, { commit });
      for (let attempt = 1; ; attempt++) {
        let outcome: DeployOutcome;
        try {
          outcome = await deployOnce(target, { ref: record.ref, commit: record.commit, supersededCommits, redoes }, { id: record.id, log, hooks, onFetched: pin });
        } catch (err) {
          const error = errorMessage(err);
          const { code, retryable } = classifyFailure(err);
          if (!retryable || attempt >= retry.attempts) {
            // Published, then switched back by the health check.
            const rolledBack = code === "HEALTH_CHECK_FAILED";
            history.update(record.id, {
              state: rolledBack ? "rolled-back" : "failed",
              error,
              code,
              attempts: tries(attempt),
              hooks,
              hookOutput: combinedHookOutput(hooks),
              finishedAt: new Date().toISOString(),
            });
            log.error(rolledBack ? "deploy rolled back" : "deploy failed", { deploy: record.id, target: target.name, code, attempts: attempt, error });
            return;
          }
          const delayMs = backoffDelay(retry, attempt);
          history.update(record.id, { error, code, attempts: attempt });
          log.warn("deploy attempt failed; retrying", { deploy: record.id, target: target.name, code, attempt, delayMs, error });
          const delay = interruptibleDelay<"newer push" | "shutdown">(delayMs);
          backoffs.set(target.repo, { item: { target, record, supersededCommits, redoes }, interrupt: delay.interrupt });
          const waited = await delay.wait;
          backoffs.delete(target.repo);
          if (waited === "newer push") {
            // The newer push deploys instead, carrying this commit along (see
            // submit): retrying an older push first would only delay it.
            supersede({ target, record }, `a later delivery arrived while this deploy waited to retry after ${code}`);
            return;
          }
          if (waited === "shutdown") {
            // Owed, not failed: the next start resumes it like any queued deploy.
            history.update(record.id, { state: "queued", startedAt: undefined });
            log.info("deploy retry left queued: stopping", { deploy: record.id, target: target.name });
            return;
          }
          continue;
        }
        if (outcome.superseded) {
          supersede({ target, record }, outcome.superseded, { previous: outcome.previous, timings: outcome.timings, attempts: tries(attempt) });
          return;
        }
        history.update(record.id, {
          state: "succeeded",
          commit: outcome.commit,
          previous: outcome.previous,
          timings: outcome.timings,
          release: outcome.release,
          hooks,
          hookOutput: combinedHookOutput(hooks),
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
          release: outcome.release,
          reusedFiles: outcome.reusedFiles,
          recycledFrom: outcome.recycledFrom,
          bytesReceived: outcome.bytesReceived,
          timings: outcome.timings,
        });
        return;
      }
    } finally {
      onSettled?.(history.get(record.id)!);
    }
  }

  function submit(targetName: string, submission: Submission): DeployRecord {
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
    const item: QueuedDeploy = { target, record, supersededCommits: [], redoes: submission.redoes };
    const retrying = backoffs.get(target.repo);
    if (retrying) {
      carryOver(retrying.item, item);
      retrying.interrupt("newer push");
    }
    queueFor(target.repo).push(item);
    return record;
  }

  function recover(): DeployRecord[] {
    const owed: DeployRecord[] = [];
    for (const record of history.unfinished()) {
      const target = currentTargets().find((t) => t.name === record.target);
      // Another process (a `hooksd deploy`, a daemon with other targets) may own it.
      if (!target) continue;
      if (record.state === "queued") {
        log.info("deploy resumed", { deploy: record.id, target: record.target, ref: record.ref, commit: record.commit });
        queueFor(target.repo).push({ target, record, supersededCommits: [] });
        owed.push(record);
        continue;
      }
      // Left `running`: the process died mid-deploy and the checkout may be
      // half-written. The in-place update moves HEAD last and counts files
      // already equal to their target as clean, so only the SAME commit is
      // safe to apply now; it is pushed before any queued record (oldest
      // first) and, once running, is never superseded.
      const redo = submit(record.target, { ref: record.ref, commit: record.commit, provider: record.provider, deliveryId: record.deliveryId, redoes: { id: record.id, startedAt: record.startedAt } });
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

    status: () => Promise.all(currentTargets().map((t) => readTargetStatus(t, history))),

    async idle() {
      await Promise.all([...queues.values()].map((q) => q.idle()));
    },

    get accepting() {
      return accepting;
    },

    async shutdown(graceMs) {
      accepting = false;
      for (const queue of queues.values()) queue.close();
      for (const { interrupt } of backoffs.values()) interrupt("shutdown");
      const running = Promise.all([...queues.values()].map((q) => q.idle())).then(() => true);
      let timer: Timer | undefined;
      const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, graceMs, false)));
      const finished = await Promise.race([running, timeout]);
      clearTimeout(timer);
      return finished;
    },
  };
}

/** Attempts are recorded only when there was more than one, so a plain deploy's record stays as it was. */
function tries(attempt: number): number | undefined {
  return attempt > 1 ? attempt : undefined;
}
