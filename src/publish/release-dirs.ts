import { lstatSync } from "node:fs";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ReleaseLayout } from "./release-layout.ts";

/**
 * Which directory (device and inode number, "dev:ino") stood at each
 * directory path of a release when it was sealed; "" is the release itself.
 *
 * Files of an old release are trusted by path and ctime: one written, chmodded,
 * linked or renamed since the seal has a newer ctime. Renaming a directory is
 * the exception: `rm -r b && mv a b` in a hook puts a's files at b's paths and
 * changes only the moved directory's own ctime. A directory whose identity is
 * not the one recorded for its path was put there since the seal, and nothing
 * below it is trusted.
 */
export type DirIds = Map<string, string>;

export function dirIdOf(st: { dev: bigint; ino: bigint }): string {
  return `${st.dev}:${st.ino}`;
}

/** Beside the marker, never ending in ".json": listReleases only reads markers. */
function dirIdsPath(layout: ReleaseLayout, id: string): string {
  return join(layout.markers, `${id}.dirs`);
}

/** True for the name of a release's dir-ids file (see pruneReleases' sweep of orphans), with the release id. */
export function dirIdsOwner(name: string): string | undefined {
  return /^(.+)\.dirs(?:\.tmp-\d+)?$/.exec(name)?.[1];
}

/**
 * Written before the marker, so that every release sealed with this code has
 * one; a release without (sealed by an older hooksd, or hand-made) is never
 * recycled or copied from. Through a temp file and rename(): a kill leaves the
 * old file or the new one, never half of one.
 */
export async function writeDirIds(layout: ReleaseLayout, id: string, dirs: DirIds): Promise<void> {
  const path = dirIdsPath(layout, id);
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, JSON.stringify([...dirs]));
  await rename(temp, path);
}

/** The recorded identities of a release's directories, or undefined when it has none (or an unreadable one). */
export async function readDirIds(layout: ReleaseLayout, id: string): Promise<DirIds | undefined> {
  const text = await readFile(dirIdsPath(layout, id), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const pairs: unknown = JSON.parse(text);
    if (!Array.isArray(pairs) || !pairs.every((p) => Array.isArray(p) && typeof p[0] === "string" && typeof p[1] === "string")) return undefined;
    return new Map(pairs as Array<[string, string]>);
  } catch {
    return undefined;
  }
}

export async function removeDirIds(layout: ReleaseLayout, id: string): Promise<void> {
  await rm(dirIdsPath(layout, id), { force: true });
}

/** Adds to `into` the identity of each of `paths` (relative to `dir`) that is a directory there now. */
export function statDirIds(dir: string, paths: Iterable<string>, into: DirIds): DirIds {
  for (const path of paths) {
    const st = lstatSync(path === "" ? dir : `${dir}/${path}`, { bigint: true, throwIfNoEntry: false });
    if (st?.isDirectory()) into.set(path, dirIdOf(st));
  }
  return into;
}

/**
 * For reading files out of a sealed release at `root`: whether the directory
 * at `path`, and every one above it, is the one sealed there. A symlink a hook
 * put in a directory's place is not (so it is never followed), nor a directory
 * moved there. lstat()s each directory once, parents first.
 */
export function sealedDirChecker(root: string, ids: DirIds): (path: string) => boolean {
  const known = new Map<string, boolean>();
  const check = (path: string): boolean => {
    let sealed = known.get(path);
    if (sealed !== undefined) return sealed;
    const slash = path.lastIndexOf("/");
    const parentSealed = path === "" || check(slash < 0 ? "" : path.slice(0, slash));
    const st = parentSealed ? lstatSync(path === "" ? root : `${root}/${path}`, { bigint: true, throwIfNoEntry: false }) : undefined;
    sealed = st !== undefined && st.isDirectory() && ids.get(path) === dirIdOf(st);
    known.set(path, sealed);
    return sealed;
  };
  return check;
}
