import { stat } from "node:fs/promises";
import { join } from "node:path";

/**
 * Where the atomic strategy keeps things under the target directory DIR:
 *
 *   DIR/current              → releases/<id>, a relative symlink: the only path to serve
 *   DIR/releases/<id>/       one complete tree per deploy (ids sort by time)
 *   DIR/.hooksd/repo.git     the git object store, never inside a served release
 *   DIR/.hooksd/releases/<id>.json   what a release holds (commit, ref); written once it is complete
 *   DIR/.hooksd/releases/<id>.dirs   its directories' identities at the seal, written just before (release-dirs.ts)
 *   DIR/.hooksd/lock         taken by every publish and by rollback
 */
export interface ReleaseLayout {
  dir: string;
  current: string;
  releases: string;
  privateDir: string;
  gitdir: string;
  markers: string;
  lock: string;
}

export function releaseLayout(dir: string): ReleaseLayout {
  const privateDir = join(dir, ".hooksd");
  return {
    dir,
    current: join(dir, "current"),
    releases: join(dir, "releases"),
    privateDir,
    gitdir: join(privateDir, "repo.git"),
    markers: join(privateDir, "releases"),
    lock: join(privateDir, "lock"),
  };
}

/** True when DIR was set up by the atomic strategy (its object store exists). */
export async function isReleaseLayout(dir: string): Promise<boolean> {
  return (await stat(releaseLayout(dir).gitdir).catch(() => undefined))?.isDirectory() ?? false;
}
