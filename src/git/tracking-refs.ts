import fs from "node:fs";
import git from "isomorphic-git";
import type { Repository } from "./repository.ts";

const TRACKING = "refs/remotes";

/** Every remote-tracking ref with its raw value: an oid, or "ref: <target>" for a symbolic one. */
export type TrackingRefs = Map<string, string>;

export async function readTrackingRefs(repo: Repository): Promise<TrackingRefs> {
  const names = await git.listRefs({ fs, gitdir: repo.gitdir, filepath: TRACKING }).catch(() => [] as string[]);
  const refs: TrackingRefs = new Map();
  for (const name of names) {
    const ref = `${TRACKING}/${name}`;
    const value = await rawValue(repo, ref);
    if (value !== undefined) refs.set(ref, value);
  }
  return refs;
}

/**
 * Puts the remote-tracking refs back as they were. isomorphic-git moves them
 * as soon as the server has advertised its refs, before the pack has arrived:
 * a fetch cut, stalled or fed a corrupt pack would otherwise leave
 * refs/remotes/origin/* naming objects the store does not have, which native
 * git then reports as broken (`git fsck`, `git log origin/main`).
 */
export async function restoreTrackingRefs(repo: Repository, before: TrackingRefs): Promise<void> {
  const now = await readTrackingRefs(repo);
  const { gitdir } = repo;
  for (const ref of now.keys()) {
    if (!before.has(ref)) await git.deleteRef({ fs, gitdir, ref });
  }
  for (const [ref, value] of before) {
    if (now.get(ref) === value) continue;
    const symbolic = value.startsWith("ref: ");
    await git.writeRef({ fs, gitdir, ref, value: symbolic ? value.slice(5) : value, symbolic, force: true });
  }
}

async function rawValue(repo: Repository, ref: string): Promise<string | undefined> {
  // Depth 1 reads the ref itself: an oid, or "ref: <target>" without following it.
  return git.resolveRef({ fs, gitdir: repo.gitdir, ref, depth: 1 }).catch(() => undefined);
}
