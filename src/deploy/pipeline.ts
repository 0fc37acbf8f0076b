import { fetchRef } from "../git/fetch.ts";
import { basicAuth } from "../git/http-client.ts";
import { discardRepository, initRepository, isAncestor, isCheckout, openRepository, readHeadCommit, type Repository } from "../git/repository.ts";
import { updateInPlace } from "../publish/in-place.ts";
import type { LoadedTarget } from "../config/loaded-target.ts";
import type { Phase } from "../state/history.ts";

export interface DeployRequest {
  ref: string;
  /** The pushed commit; undefined deploys whatever the ref points to now (a manual deploy). */
  commit: string | undefined;
  /** Pushed commits of the same ref whose deploys this one replaced; the newest of all is deployed. */
  supersededCommits?: readonly string[] | undefined;
}

export interface DeployOutcome {
  previous: string | undefined;
  commit: string;
  changedPaths: number;
  bytesReceived: number;
  timings: Partial<Record<Phase, number>>;
  /** Why the site was left as it was, when the pushed commit is older than the deployed one. */
  superseded?: string | undefined;
}

/**
 * One deploy, top to bottom: open (or create) the checkout, fetch the pushed
 * ref, and move the work tree to the pushed commit. Runs only from the
 * target's queue, so it never races another deploy of the same target.
 */
export async function runDeploy(
  target: LoadedTarget,
  request: DeployRequest,
  onPhase?: (phase: Phase) => void,
  onFetched?: (commit: string) => void,
): Promise<DeployOutcome> {
  const timings: DeployOutcome["timings"] = {};
  const timed = async <T>(phase: Phase, work: () => Promise<T>): Promise<T> => {
    onPhase?.(phase);
    const start = performance.now();
    try {
      return await work();
    } finally {
      timings[phase] = Math.round(performance.now() - start);
    }
  };

  const firstDeploy = !(await isCheckout(target.repo));
  const repo = firstDeploy ? await initRepository(target.repo, target.remote) : await openRepository(target.repo);
  const previous = await readHeadCommit(repo);

  const fetched = await timed("fetch", () =>
    fetchRef(repo, {
      url: target.remote,
      ref: request.ref,
      commit: request.commit,
      authorization: target.credentials && basicAuth(target.credentials.username, target.credentials.password.reveal()),
      timeoutSeconds: target.fetchTimeoutSeconds,
    }),
  ).catch(async (err: unknown) => {
    // A first deploy that fetched nothing leaves DIR as it found it: the
    // next attempt then starts from scratch instead of from an empty repository.
    if (firstDeploy) await discardRepository(repo);
    throw err;
  });

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
      superseded: `pushed commit ${commit} is older than the deployed ${previous} (an ancestor of it); the site stays at ${previous}`,
    };
  }

  onFetched?.(commit);
  const { changed } = await timed("checkout", () =>
    updateInPlace(repo, { from: previous, to: commit, ref: request.ref, force: target.force }),
  );
  return { previous, commit, changedPaths: changed, bytesReceived: fetched.bytesReceived, timings };
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
