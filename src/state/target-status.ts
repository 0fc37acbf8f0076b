import { isCheckout, openRepository, readHeadCommit } from "../git/repository.ts";
import { isReleaseLayout, releaseLayout } from "../publish/release-layout.ts";
import { readCurrentRelease } from "../publish/releases.ts";
import type { DeployRecord, History } from "./history.ts";
import type { KnownTarget } from "./known-targets.ts";

export interface TargetStatus {
  name: string;
  repo: string;
  refs: string;
  deployedCommit: string | undefined;
  lastDeploy: Pick<DeployRecord, "id" | "state" | "ref" | "commit" | "error" | "reason" | "finishedAt"> | undefined;
}

/** The checkout's HEAD (what is really deployed) beside the history's newest record. */
export async function readTargetStatus(target: KnownTarget, history: History): Promise<TargetStatus> {
  const last = history.latest(target.name);
  return {
    name: target.name,
    repo: target.repo,
    refs: target.refs,
    deployedCommit: await deployedCommit(target.repo),
    lastDeploy: last && { id: last.id, state: last.state, ref: last.ref, commit: last.commit, error: last.error, reason: last.reason, finishedAt: last.finishedAt },
  };
}

async function deployedCommit(dir: string): Promise<string | undefined> {
  // Atomic releases: what `current` points to.
  if (await isReleaseLayout(dir)) return (await readCurrentRelease(releaseLayout(dir)))?.commit;
  if (!(await isCheckout(dir))) return undefined;
  return readHeadCommit(await openRepository(dir));
}
