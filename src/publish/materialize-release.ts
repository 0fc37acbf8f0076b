import { lstat, mkdir, rm } from "node:fs/promises";
import { applyChanges } from "../git/checkout.ts";
import { readCommitTree, type Repository } from "../git/repository.ts";
import { diffTrees, type Change } from "../git/tree-diff.ts";
import { claimRecyclableRelease, type RecycledRelease } from "./claim-recyclable-release.ts";
import { reconcileRecycledTree } from "./reconcile-recycled-tree.ts";
import { readDirIds, sealedDirChecker, statDirIds, writeDirIds } from "./release-dirs.ts";
import type { ReleaseLayout } from "./release-layout.ts";
import { releaseDir, sealedAt, writeReleaseMarker, type Release } from "./releases.ts";

const REGULAR = 0o100644;
const EXECUTABLE = 0o100755;
const GITLINK = 0o160000;

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
 * own clock tick counts as changed), in directories that are still the ones
 * sealed at their paths (release-dirs.ts). A hook that edited a file in an
 * old release therefore never leaks into a new one. A `base` sealed without
 * directory identities (by an older hooksd) lends nothing: every file comes
 * from git.
 *
 * Sealing records the new release's directory identities, then writes the
 * marker. A crash before the marker leaves an unsealed directory that no
 * reader, rollback or base ever uses; the redo or the next prune removes it.
 */
export async function materializeRelease(
  repo: Repository,
  layout: ReleaseLayout,
  target: { id: string; commit: string; ref: string },
  base: Release | undefined,
  options: { keep: number },
): Promise<MaterializeResult> {
  const tree = await readCommitTree(repo, target.commit);
  const dir = releaseDir(layout, target.id);
  const recycled = await claimRecyclableRelease(layout, { id: target.id, base, keep: options.keep });
  const { entries, written, reused, dirIds } = recycled ? await recycle(repo, dir, tree, recycled) : await copyFromBase(repo, layout, dir, tree, base);

  const release: Release = { id: target.id, commit: target.commit, ref: target.ref, createdAt: new Date().toISOString() };
  await mkdir(layout.markers, { recursive: true });
  // Before the marker: every sealed release has them (a kill in between leaves an unsealed directory, garbage).
  await writeDirIds(layout, release.id, dirIds);
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

/** Brings the recycled release's tree (already at `dir`) to `tree`: only what differs is written (see reconcileRecycledTree). */
async function recycle(repo: Repository, dir: string, tree: string, recycled: RecycledRelease) {
  // A store that lost the old commit (it should not) only costs speed: no file is kept.
  const oldTree = await readCommitTree(repo, recycled.release.commit).catch(() => undefined);
  const walk = await reconcileRecycledTree(repo, dir, tree, { tree: oldTree, sealedAt: recycled.sealedAt, dirIds: recycled.dirIds });
  const entries = await applyChanges(repo, dir, walk.writes, { clearObstacles: true });
  return { entries, written: entries.length, reused: walk.kept, dirIds: statDirIds(dir, walk.createdDirs, walk.dirIds) };
}

async function copyFromBase(repo: Repository, layout: ReleaseLayout, dir: string, tree: string, base: Release | undefined) {
  const everything = await diffTrees(repo, undefined, tree);
  const changed = base ? new Set((await diffTrees(repo, await readCommitTree(repo, base.commit), tree)).map((c) => c.path)) : undefined;
  const baseSeal = base ? await sealedAt(layout, base.id) : undefined;
  const baseDirIds = base ? await readDirIds(layout, base.id) : undefined;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  let reused = 0;
  const baseDir = base && releaseDir(layout, base.id);
  // Only from directories that are the ones sealed there: not through a
  // symlink a hook put where `base` had a directory (the copy would bring in
  // whatever it points to), nor from a directory a hook moved into another's
  // place (its files would keep their ctime at their new paths).
  const sealedDir = baseDir !== undefined && baseDirIds !== undefined ? sealedDirChecker(baseDir, baseDirIds) : undefined;
  const reuseFrom = async (change: Change): Promise<string | undefined> => {
    if (sealedDir === undefined || baseSeal === undefined || changed!.has(change.path)) return undefined;
    const mode = change.after!.mode;
    if (mode !== REGULAR && mode !== EXECUTABLE) return undefined;
    const slash = change.path.lastIndexOf("/");
    if (!sealedDir(slash < 0 ? "" : change.path.slice(0, slash))) return undefined;
    const source = `${baseDir}/${change.path}`;
    const st = await lstat(source, { bigint: true }).catch(() => undefined);
    if (!st?.isFile() || st.ctimeNs >= baseSeal) return undefined;
    if (((st.mode & 0o100n) !== 0n) !== (mode === EXECUTABLE)) return undefined;
    reused++;
    return source;
  };
  const entries = await applyChanges(repo, dir, everything, { clearObstacles: false, fresh: true, reuseFrom });
  return { entries, written: everything.length - reused, reused, dirIds: statDirIds(dir, treeDirs(everything), new Map()) };
}

/** Every directory `changes` (a whole tree) puts in a release, the release itself ("") and submodules included. */
function treeDirs(changes: Change[]): Set<string> {
  const dirs = new Set([""]);
  for (const { path, after } of changes) {
    if (after?.mode === GITLINK) dirs.add(path);
    // Upwards until a directory already there: its own parents were added with it.
    for (let slash = path.lastIndexOf("/"); slash > 0 && !dirs.has(path.slice(0, slash)); slash = path.lastIndexOf("/", slash - 1)) dirs.add(path.slice(0, slash));
  }
  return dirs;
}
