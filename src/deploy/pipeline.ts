import { fetchRef } from "../git/fetch.ts";
import { basicAuth } from "../git/http-client.ts";
import { discardRepository, initRepository, isCheckout, openRepository, readHeadCommit } from "../git/repository.ts";
import { updateInPlace } from "../publish/in-place.ts";
import type { LoadedTarget } from "../config/loaded-target.ts";
import type { Phase } from "../state/history.ts";

export interface DeployRequest {
  ref: string;
  /** The pushed commit; undefined deploys whatever the ref points to now. */
  commit: string | undefined;
}

export interface DeployOutcome {
  previous: string | undefined;
  commit: string;
  changedPaths: number;
  bytesReceived: number;
  timings: Partial<Record<Phase, number>>;
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

  onFetched?.(fetched.commit);
  const { changed } = await timed("checkout", () =>
    updateInPlace(repo, { from: previous, to: fetched.commit, ref: request.ref, force: target.force }),
  );
  return { previous, commit: fetched.commit, changedPaths: changed, bytesReceived: fetched.bytesReceived, timings };
}
