import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { expectFreshCheckout } from "../git/checkout.ts";
import { fetchRef } from "../git/fetch.ts";
import { removeIndexLockSince } from "../git/index-file.ts";
import { basicAuth } from "../git/http-client.ts";
import { discardRepository, initRepository, initStore, isAncestor, isCheckout, openRepository, readHeadCommit, repositoryAt, setHead, type Repository } from "../git/repository.ts";
import { hookEnvironment } from "../hooks/hook-env.ts";
import { createHookRunner } from "../hooks/hook-runner.ts";
import type { HookRun } from "../hooks/run-hook.ts";
import { updateInPlace } from "../publish/in-place.ts";
import { materializeRelease } from "../publish/materialize-release.ts";
import { LOCK_WAIT_MS, publishRelease } from "../publish/publish-release.ts";
import { isReleaseLayout, releaseLayout, type ReleaseLayout } from "../publish/release-layout.ts";
import { readCurrentId, readCurrentRelease, releaseDir, removeRelease } from "../publish/releases.ts";
import { withTargetLock } from "../publish/target-lock.ts";
import { newDeployId } from "./deploy-id.ts";
import { DEFAULT_HOOK_TIMEOUT_SECONDS, DEFAULT_KEEP } from "../config/schema.ts";
import type { LoadedTarget } from "../config/loaded-target.ts";
import { silentLogger, type Logger } from "../log.ts";
import type { Phase } from "../state/history.ts";
import { errorMessage } from "../util/error-message.ts";

export interface DeployRequest {
  ref: string;
  /** The pushed commit; undefined deploys whatever the ref points to now (a manual deploy). */
  commit: string | undefined;
  /** Pushed commits of the same ref whose deploys this one replaced; the newest of all is deployed. */
  supersededCommits?: readonly string[] | undefined;
  /** The deploy this one redoes after a crash (start-up recovery): its process is gone. */
  redoes?: InterruptedDeploy | undefined;
}

export interface InterruptedDeploy {
  id: string;
  /** When it started (ISO time), if it did. */
  startedAt: string | undefined;
}

export interface DeployContext {
  /** The deploy's id; the atomic strategy names the release after it. */
  id: string;
  log: Logger;
  onPhase?: (phase: Phase) => void;
  /** Receives every hook run, also when the deploy fails (the error itself is thrown as it came). */
  hooks?: HookRun[];
  /** Told the commit about to be written, before anything is (the history pins it for crash recovery). */
  onFetched?: (commit: string) => void;
}

export interface DeployOutcome {
  previous: string | undefined;
  commit: string;
  changedPaths: number;
  bytesReceived: number;
  timings: Partial<Record<Phase, number>>;
  /** atomic: the release now serving, and how many of its files were kept from an older one (copied, or left in place when recycled). */
  release: string | undefined;
  reusedFiles: number | undefined;
  /** atomic: the pruned-anyway release whose directory was brought to this commit, if one was recycled. */
  recycledFrom: string | undefined;
  hooks: HookRun[];
  /** Why the site was left as it was, when the pushed commit is older than the deployed one. */
  superseded?: string | undefined;
}

/** runDeploy's shape, wherever it runs (here, or on the deploy thread: deploy-thread.ts). */
export type RunDeploy = (target: LoadedTarget, request: DeployRequest, context: DeployContext) => Promise<DeployOutcome>;

/** What git passes for "no commit" (post-checkout's first argument on a clone). */
const NO_COMMIT = "0".repeat(40);

/**
 * One deploy, top to bottom: open (or create) the target, fetch the pushed
 * ref, write the new tree, run post-checkout and pre-deploy, publish under
 * the target lock, run post-deploy. Any failure runs deploy-failed and is
 * rethrown as it came (a health-check failure is a ReleaseError with code
 * HEALTH_CHECK_FAILED: published, then switched back). Runs only from the
 * target's queue, so it never races another deploy of the same target in
 * this process; the target lock covers publishing against `hooksd rollback`
 * and other processes.
 *
 * in-place: the tree is written by publishing itself, so pre-deploy runs in
 * DIR before the update and post-checkout after it.
 * atomic: the tree is a new release beside the serving one; both hooks run
 * in it before `current` switches, so a failing pre-deploy publishes nothing.
 */
export async function runDeploy(target: LoadedTarget, request: DeployRequest, context: DeployContext = { id: newDeployId(), log: silentLogger }): Promise<DeployOutcome> {
  const timings: DeployOutcome["timings"] = {};
  const timed = async <T>(phase: Phase, work: () => Promise<T>): Promise<T> => {
    context.onPhase?.(phase);
    const start = performance.now();
    try {
      return await work();
    } finally {
      timings[phase] = Math.round(performance.now() - start);
    }
  };

  const atomic = target.strategy === "atomic";
  const layout = releaseLayout(target.repo);
  const firstDeploy = !(await (atomic ? isReleaseLayout : isCheckout)(target.repo));
  const repo = atomic ? await openStore(target, layout, firstDeploy) : await openCheckout(target, firstDeploy);
  const base = atomic ? await readCurrentRelease(layout) : undefined;
  // A deploy killed before its switch left its release behind, unsealed (with
  // temp files in it) or sealed but never served. Its process is gone, so
  // nothing writes it any more: it goes now, or it would wait an hour for the
  // prune and, sealed, be what `hooksd rollback` picks after this redo. Once
  // `current` names it, it was published and stays.
  if (atomic && request.redoes !== undefined && request.redoes.id !== base?.id) await removeRelease(layout, request.redoes.id);
  const previous = atomic ? base?.commit : await readHeadCommit(repo);
  const newTree = atomic ? releaseDir(layout, context.id) : target.repo;

  const vars: Record<string, string> = {
    HOOKSD_TARGET: target.name,
    HOOKSD_REF: request.ref,
    HOOKSD_OLD_COMMIT: previous ?? NO_COMMIT,
    HOOKSD_NEW_COMMIT: request.commit ?? "",
    HOOKSD_RELEASE_DIR: newTree,
    HOOKSD_DEPLOY_ID: context.id,
  };
  const hooks = createHookRunner({
    hooksDir: target.hooksDir,
    repoHooks: target.repoHooks,
    workDir: join(atomic ? layout.privateDir : join(repo.gitdir, "hooksd"), `hooks-${context.id}`),
    timeoutSeconds: target.hookTimeoutSeconds ?? DEFAULT_HOOK_TIMEOUT_SECONDS,
    env: hookEnvironment(process.env, [...target.secrets, ...target.signingTokens, target.credentials?.password], {}),
    log: context.log,
  });

  let release: string | undefined;
  let published = false;
  let fetchedSomething = false;
  try {
    const fetched = await timed("fetch", () =>
      fetchRef(repo, {
        url: target.remote,
        ref: request.ref,
        commit: request.commit,
        authorization: target.credentials && basicAuth(target.credentials.username, target.credentials.password.reveal()),
        timeoutSeconds: target.fetchTimeoutSeconds,
        // A first deploy in place writes every file of the pack it fetches.
        onPackObjects: atomic || previous !== undefined ? undefined : expectFreshCheckout,
      }),
    );
    fetchedSomething = true;
    const commit = await newestCommit(repo, fetched.commit, request.supersededCommits ?? []);

    // Never backwards: forges retry and reorder deliveries, so a push can arrive
    // after a newer one was deployed; its commit is then an ancestor of the live
    // one and deploying it would undo the newer push. Only pushed commits are
    // held to this; a manual deploy of the ref's tip goes wherever the ref is.
    if (request.commit !== undefined && previous !== undefined && (await isAncestor(repo, commit, previous))) {
      return {
        previous,
        commit: previous,
        changedPaths: 0,
        bytesReceived: fetched.bytesReceived,
        timings,
        release: undefined,
        reusedFiles: undefined,
        recycledFrom: undefined,
        hooks: hooks.runs,
        superseded: `pushed commit ${commit} is older than the deployed ${previous} (an ancestor of it); the site stays at ${previous}`,
      };
    }
    context.onFetched?.(commit);
    vars.HOOKSD_NEW_COMMIT = commit;
    await hooks.addRepoHooks(repo, commit);
    // As git gives them to post-checkout, and to pre-receive / post-receive on stdin.
    const checkoutArgs = [vars.HOOKSD_OLD_COMMIT!, commit, "1"];
    const refLine = `${vars.HOOKSD_OLD_COMMIT} ${commit} ${request.ref}\n`;

    let changedPaths: number;
    let reusedFiles: number | undefined;
    let recycledFrom: string | undefined;
    if (atomic) {
      const keep = target.keep ?? DEFAULT_KEEP;
      const made = await timed("checkout", () => materializeRelease(repo, layout, { id: context.id, commit, ref: request.ref }, base, { keep }));
      release = made.release.id;
      changedPaths = made.written;
      reusedFiles = made.reused;
      recycledFrom = made.recycledFrom;
      await hooks.run("post-checkout", { cwd: newTree, args: checkoutArgs, env: vars });
      await hooks.run("pre-deploy", { cwd: newTree, stdin: refLine, env: vars, mustSucceed: true });
      await timed("publish", () => publishRelease(layout, made.release.id, target));
      published = true;
      // The store's HEAD is what the next fetch offers as "have".
      await setHead(repo, request.ref, commit);
    } else {
      await hooks.run("pre-deploy", { cwd: target.repo, stdin: refLine, env: vars, mustSucceed: true });
      const lock = join(repo.gitdir, "hooksd.lock");
      const updated = await timed("checkout", () =>
        withTargetLock(lock, { timeoutMs: LOCK_WAIT_MS, purpose: `deploy ${context.id}` }, async () => {
          // Killed while writing the index, the redone deploy left index.lock,
          // which would refuse every deploy from now on. Made since it started,
          // it is that dead deploy's (see removeIndexLockSince).
          if (request.redoes?.startedAt) await removeIndexLockSince(repo.gitdir, new Date(request.redoes.startedAt));
          return updateInPlace(repo, { from: previous, to: commit, ref: request.ref, force: target.force });
        }),
      );
      published = true;
      changedPaths = updated.changed;
      await hooks.run("post-checkout", { cwd: target.repo, args: checkoutArgs, env: vars });
    }
    await hooks.run("post-deploy", { cwd: newTree, stdin: refLine, env: vars });
    if (hooks.runs.length > 0) timings.hooks = hooks.runs.reduce((ms, run) => ms + run.durationMs, 0);
    return { previous, commit, changedPaths, bytesReceived: fetched.bytesReceived, timings, release, reusedFiles, recycledFrom, hooks: hooks.runs };
  } catch (err) {
    const message = errorMessage(err);
    await hooks.run("deploy-failed", { cwd: target.repo, env: { ...vars, HOOKSD_ERROR: message } }).catch(() => []);
    // An unpublished (or switched-back) release is never served: it goes, so
    // rollback cannot pick it; so does one that failed half-built. If it was
    // recycled, the release it was made from is gone too: one that this
    // deploy's prune would have removed, never the current one or the one
    // before it (claimRecyclableRelease), so rollback keeps its target.
    // `current` is checked because a publish that switched and then failed
    // (its prune) must not take the serving release with it.
    if (atomic && !published && (await readCurrentId(layout)) !== context.id) await removeRelease(layout, context.id);
    // A first deploy that fetched nothing leaves DIR as it found it: the
    // next attempt then starts from scratch instead of from an empty repository.
    if (firstDeploy && !fetchedSomething) await discardRepository(repo);
    throw err;
  } finally {
    context.hooks?.push(...hooks.runs);
    await hooks.cleanup();
  }
}

function openCheckout(target: LoadedTarget, firstDeploy: boolean): Promise<Repository> {
  return firstDeploy ? initRepository(target.repo, target.remote) : openRepository(target.repo);
}

/** The atomic strategy's object store, outside every release (see release-layout.ts). */
async function openStore(target: LoadedTarget, layout: ReleaseLayout, firstDeploy: boolean): Promise<Repository> {
  if (!firstDeploy) return repositoryAt(target.repo, layout.gitdir);
  const repo = await initStore(target.repo, layout, target.remote);
  await mkdir(layout.releases, { recursive: true });
  return repo;
}

/**
 * Of the pushed commits, the one every other descends from: a burst delivered
 * out of order still deploys its newest push. Commits on unrelated histories
 * (a force push) leave the latest delivery's commit in place.
 */
async function newestCommit(repo: Repository, delivered: string, superseded: readonly string[]): Promise<string> {
  let newest = delivered;
  for (const candidate of superseded) {
    if (await isAncestor(repo, newest, candidate)) newest = candidate;
  }
  return newest;
}
