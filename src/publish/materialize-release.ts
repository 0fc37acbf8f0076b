import { lstat, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { applyChanges } from "../git/checkout.ts";
import { readCommitTree, type Repository } from "../git/repository.ts";
import { diffTrees, type Change } from "../git/tree-diff.ts";
import type { ReleaseLayout } from "./release-layout.ts";
import { releaseDir, sealedAt, writeReleaseMarker, type Release } from "./releases.ts";

const REGULAR = 0o100644;
const EXECUTABLE = 0o100755;

export interface MaterializeResult {
  release: Release;
  dir: string;
  /** Files written from git objects. */
  written: number;
  /** Files copied from the previous release. */
  reused: number;
}

/**
 * Writes `commit` into DIR/releases/<id>/ and seals it with its marker.
 *
 * Only paths that differ from `base` (the release serving now) are read from
 * git; every other file is copied from `base`, provided it is still exactly
 * as `base` was materialized: a regular file with the right exec bit whose
 * ctime is older than `base`'s seal (git's "racy" rule: a file changed in the
 * seal's own clock tick counts as changed). A hook that edited a file in an
 * old release therefore never leaks into a new one.
 *
 * A crash before the marker leaves an unsealed directory that no reader,
 * rollback or base ever uses; the next prune removes it.
 */
export async function materializeRelease(
  repo: Repository,
  layout: ReleaseLayout,
  target: { id: string; commit: string; ref: string },
  base: Release | undefined,
): Promise<MaterializeResult> {
  const tree = await readCommitTree(repo, target.commit);
  const everything = await diffTrees(repo, undefined, tree);
  const changed = base ? new Set((await diffTrees(repo, await readCommitTree(repo, base.commit), tree)).map((c) => c.path)) : undefined;
  const baseSeal = base ? await sealedAt(layout, base.id) : undefined;

  const dir = releaseDir(layout, target.id);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  let reused = 0;
  const reuseFrom = async (change: Change): Promise<string | undefined> => {
    if (!base || baseSeal === undefined || changed!.has(change.path)) return undefined;
    const mode = change.after!.mode;
    if (mode !== REGULAR && mode !== EXECUTABLE) return undefined;
    const source = join(releaseDir(layout, base.id), change.path);
    const st = await lstat(source, { bigint: true }).catch(() => undefined);
    if (!st?.isFile() || st.ctimeNs >= baseSeal) return undefined;
    if (((st.mode & 0o100n) !== 0n) !== (mode === EXECUTABLE)) return undefined;
    reused++;
    return source;
  };
  const entries = await applyChanges(repo, dir, everything, { clearObstacles: false, fresh: true, reuseFrom });

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
  return { release, dir, written: everything.length - reused, reused };
}
