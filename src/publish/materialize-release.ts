import { lstat, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { applyChanges } from "../git/checkout.ts";
import { nonDirectoryAncestorFinder } from "../git/local-changes.ts";
import { readCommitTree, type Repository } from "../git/repository.ts";
import { diffTrees, type Change } from "../git/tree-diff.ts";
import { claimRecyclableRelease, type RecycledRelease } from "./claim-recyclable-release.ts";
import { reconcileRecycledTree } from "./reconcile-recycled-tree.ts";
import type { ReleaseLayout } from "./release-layout.ts";
import { releaseDir, sealedAt, writeReleaseMarker, type Release } from "./releases.ts";

const REGULAR = 0o100644;
const EXECUTABLE = 0o100755;

export interface MaterializeResult {
  release: Release;
  dir: string;
  /** Files written from git objects. */
  written: number;
  /** Files kept as they were: copied from `base`, or left in place in the recycled release. */
  reused: number;
  /** The release whose directory became this one (see claimRecyclableRelease), or undefined when it was built afresh. */
  recycledFrom: string | undefined;
}

/**
 * Writes `commit` into DIR/releases/<id>/ and seals it with its marker.
 *
 * In steady state a release the publish would prune anyway is recycled:
 * renamed to DIR/releases/<id>/ and brought to `commit` in place, so the work
 * is one walk of its tree plus the files that differ from it (see
 * reconcileRecycledTree). Otherwise the release is built afresh: only paths
 * that differ from `base` (the release serving now) are read from git; every
 * other file is copied from `base`, provided it is still exactly as `base`
 * was materialized: a regular file with the right exec bit whose ctime is
 * older than `base`'s seal (git's "racy" rule: a file changed in the seal's
 * own clock tick counts as changed). A hook that edited a file in an old
 * release therefore never leaks into a new one.
 *
 * A crash before the marker leaves an unsealed directory that no reader,
 * rollback or base ever uses; the redo or the next prune removes it.
 */
export async function materializeRelease(
  repo: Repository,
  layout: ReleaseLayout,
  target: { id: string; commit: string; ref: string },
  base: Release | undefined,
  options: { keep: number },
): Promise<MaterializeResult> {
  const tree = await readCommitTree(repo, target.commit);
  const everything = await diffTrees(repo, undefined, tree);
  const dir = releaseDir(layout, target.id);
  const recycled = await claimRecyclableRelease(layout, { id: target.id, base, keep: options.keep });
  const { entries, written, reused } = recycled ? await recycle(repo, dir, tree, everything, recycled) : await copyFromBase(repo, layout, dir, tree, everything, base);

  const release: Release = { id: target.id, commit: target.commit, ref: target.ref, createdAt: new Date().toISOString() };
  await mkdir(layout.markers, { recursive: true });
  // File times come from a coarse clock: files written in the seal's own tick
  // would look "changed after the seal" to the next deploy and never be
  // reused. Re-seal until the marker is strictly newer than every file.
  const newest = entries.reduce((max, e) => {
    const ns = BigInt(e.ctimeSeconds) * 1_000_000_000n + BigInt(e.ctimeNanoseconds);
    return ns > max ? ns : max;
  }, 0n);
  await writeReleaseMarker(layout, release);
  while ((await sealedAt(layout, release.id))! <= newest) {
    await Bun.sleep(1);
    await writeReleaseMarker(layout, release);
  }
  return { release, dir, written, reused, recycledFrom: recycled?.release.id };
}

/** Brings the recycled release's tree (already at `dir`) to `tree`: files that differ are written, the rest stay. */
async function recycle(repo: Repository, dir: string, tree: string, everything: Change[], recycled: RecycledRelease) {
  // A store that lost the old commit (it should not) only costs speed: every path counts as changed.
  const oldTree = await readCommitTree(repo, recycled.release.commit).catch(() => undefined);
  const changed = new Set((await diffTrees(repo, oldTree, tree)).map((c) => c.path));
  const wanted = new Map(everything.map((c) => [c.path, c.after!]));
  const kept = await reconcileRecycledTree(dir, wanted, changed, recycled.sealedAt);
  const entries = await applyChanges(repo, dir, everything.filter((c) => !kept.has(c.path)), { clearObstacles: true });
  return { entries, written: entries.length, reused: kept.size };
}

async function copyFromBase(repo: Repository, layout: ReleaseLayout, dir: string, tree: string, everything: Change[], base: Release | undefined) {
  const changed = base ? new Set((await diffTrees(repo, await readCommitTree(repo, base.commit), tree)).map((c) => c.path)) : undefined;
  const baseSeal = base ? await sealedAt(layout, base.id) : undefined;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  let reused = 0;
  const baseDir = base && releaseDir(layout, base.id);
  // A hook may have put a symlink where `base` had a directory: lstat() would
  // follow it and the copy would bring in whatever it points to.
  const nonDirectoryAncestor = baseDir === undefined ? undefined : nonDirectoryAncestorFinder(baseDir);
  const reuseFrom = async (change: Change): Promise<string | undefined> => {
    if (baseDir === undefined || baseSeal === undefined || changed!.has(change.path)) return undefined;
    const mode = change.after!.mode;
    if (mode !== REGULAR && mode !== EXECUTABLE) return undefined;
    if ((await nonDirectoryAncestor!(change.path)) !== undefined) return undefined;
    const source = join(baseDir, change.path);
    const st = await lstat(source, { bigint: true }).catch(() => undefined);
    if (!st?.isFile() || st.ctimeNs >= baseSeal) return undefined;
    if (((st.mode & 0o100n) !== 0n) !== (mode === EXECUTABLE)) return undefined;
    reused++;
    return source;
  };
  const entries = await applyChanges(repo, dir, everything, { clearObstacles: false, fresh: true, reuseFrom });
  return { entries, written: everything.length - reused, reused };
}
