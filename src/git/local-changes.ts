import { lstatSync } from "node:fs";
import { lstat, readFile, readlink, readdir } from "node:fs/promises";
import { join } from "node:path";
import { hashBlob } from "./hash-blob.ts";
import { statMatches, type IndexEntry } from "./index-file.ts";
import type { Change, TreeEntry } from "./tree-diff.ts";
import { forEachLimit } from "../util/for-each-limit.ts";
import { createYielder } from "../util/yielder.ts";

const SYMLINK = 0o120000;
const GITLINK = 0o160000;

/** What stands in the way of checking out `changes` over the work tree. */
export interface Obstacles {
  /** Tracked files whose content or exec bit differs from both the index and the target. */
  modified: string[];
  /** Untracked files (or directories holding them) where the target puts a tracked path. */
  untracked: string[];
  /** Tracked paths missing from the work tree: restored by the checkout. */
  missing: string[];
}

/**
 * Compares the work tree with the index, as `git status` does: a file whose
 * stat data still matches its index entry is clean without being read. A file
 * already equal to its target content counts as clean too, so that a deploy
 * interrupted half-way can simply be run again.
 */
export async function findObstacles(dir: string, index: Map<string, IndexEntry>, changes: Change[], indexMtimeSeconds: number): Promise<Obstacles> {
  const targets = new Map(changes.map((c) => [c.path, c.after]));
  const deleted = new Set(changes.filter((c) => c.before && !c.after).map((c) => c.path));
  const nonDirectoryAncestor = nonDirectoryAncestorFinder(dir);
  const modified: string[] = [];
  const missing: string[] = [];
  // Every tracked file is lstat()ed, as `git status` does. Synchronous calls are several times
  // cheaper than a promise per file on 50,000 files; the loop yields every few milliseconds
  // so that webhooks are still answered. Only files whose stat data changed are read, asynchronously.
  const suspects: IndexEntry[] = [];
  // Whether a tracked file's directory is blocked depends only on the directory: asked once per directory.
  const parentBlocked = new Map<string, boolean>();
  const maybeYield = createYielder();
  let seen = 0;
  for (const entry of index.values()) {
    // Asked every 64 files rather than every file: even a promise that does not wait costs as much as a tenth of an lstat.
    if ((seen++ & 63) === 0) await maybeYield();
    if (entry.mode === GITLINK) continue;
    // Under a file or symlink that took the place of a tracked directory the entry is gone,
    // and looking further would follow the symlink out of the tree.
    const slash = entry.path.lastIndexOf("/");
    const parent = slash < 0 ? "" : entry.path.slice(0, slash);
    let blocked = parentBlocked.get(parent);
    if (blocked === undefined) parentBlocked.set(parent, (blocked = slash >= 0 && (await nonDirectoryAncestor(entry.path)) !== undefined));
    if (blocked) {
      missing.push(entry.path);
      continue;
    }
    // Seconds, sizes and inode numbers are all statMatches() compares: plain numbers are exact for them, and cheaper than BigInts.
    // Concatenated, not join()ed: tracked paths are already normal, and join() costs as much as the lstat here.
    const st = lstatSync(`${dir}/${entry.path}`, { throwIfNoEntry: false });
    if (!st) missing.push(entry.path);
    // A tracked file this change deletes, found as a directory: a deploy killed
    // half-way through a file-to-directory swap had already replaced it (HEAD
    // and the index still name the file). The file is gone, as the target
    // wants; what the directory holds is checked like any path the target writes.
    else if (deleted.has(entry.path) && st.isDirectory()) missing.push(entry.path);
    // "Racy git": a file changed in the same second the index was written keeps matching stat data.
    else if (entry.mtimeSeconds >= indexMtimeSeconds || !statMatches(entry, st)) suspects.push(entry);
  }
  await forEachLimit(suspects, 32, async (entry) => {
    const state = await compareContent(dir, entry, targets.get(entry.path));
    if (state === "modified") modified.push(entry.path);
    if (state === "missing") missing.push(entry.path);
  });

  // Every path the checkout will write: the commit's additions and modifications, and missing tracked files it restores.
  const writes = [...changes.flatMap((c) => (c.after ? [c.path] : [])), ...missing.filter((path) => !targets.has(path))];
  const untracked = new Set<string>();
  for (const path of writes) {
    await maybeYield();
    // Every directory on the way must be a directory (or a tracked file this change deletes):
    // an untracked file or symlink there would be overwritten or followed out of the tree.
    const blocker = await nonDirectoryAncestor(path);
    if (blocker) {
      if (!deleted.has(blocker)) untracked.add(blocker);
      continue;
    }
    const target = targets.get(path);
    if (target && !index.has(path) && (await blocksPath(dir, path, target, index, deleted))) untracked.add(path);
  }
  return { modified: modified.sort(), untracked: [...untracked].sort(), missing: missing.sort() };
}

/**
 * Returns a lookup of the first ancestor of a path that exists and is not a
 * directory (a file, or a symlink even to a directory). Ancestors are checked
 * top-down and the search stops there, so lstat never resolves a path through
 * a symlink. Results are cached: call it again after changing the tree.
 */
export function nonDirectoryAncestorFinder(dir: string): (path: string) => Promise<string | undefined> {
  // Few distinct directories, looked up once per tracked file: a synchronous lstat each, cached.
  const kinds = new Map<string, "directory" | "missing" | "other">();
  const kindOf = (path: string) => {
    let kind = kinds.get(path);
    if (!kind) {
      const st = lstatSync(join(dir, path), { throwIfNoEntry: false });
      kind = !st ? "missing" : st.isDirectory() ? "directory" : "other";
      kinds.set(path, kind);
    }
    return kind;
  };
  return async (path) => {
    for (const parent of ancestors(path)) {
      const kind = kindOf(parent);
      if (kind === "other") return parent;
      if (kind === "missing") return undefined;
    }
    return undefined;
  };
}

/** For a file whose stat data no longer vouches for it: is its content still the index's, or the target's? */
async function compareContent(dir: string, entry: IndexEntry, target: TreeEntry | undefined): Promise<"clean" | "modified" | "missing"> {
  const actual = await describeFile(dir, entry.path);
  if (!actual) return "modified";
  const same = (e: { mode: number; oid: string } | undefined) => e !== undefined && e.oid === actual.oid && e.mode === actual.mode;
  return same(entry) || same(target) ? "clean" : "modified";
}

/** True when something untracked sits at `path` and is not what the target puts there. */
async function blocksPath(dir: string, path: string, target: TreeEntry, index: Map<string, IndexEntry>, deleted: Set<string>): Promise<boolean> {
  // Synchronous: on a first deploy this runs for every file of the tree, and nearly always finds nothing.
  const st = lstatSync(`${dir}/${path}`, { throwIfNoEntry: false });
  if (!st) return false;
  if (st.isDirectory()) {
    if (target.mode === GITLINK) return false;
    // A tracked directory turning into a file: fine if everything in it is tracked and deleted now.
    return (await listFiles(dir, path)).some((p) => !deleted.has(p) || !index.has(p));
  }
  const actual = await describeFile(dir, path);
  return !(actual && actual.oid === target.oid && actual.mode === target.mode);
}

/** The tree entry a file in the work tree would get from `git add`. */
async function describeFile(dir: string, path: string): Promise<TreeEntry | undefined> {
  const full = join(dir, path);
  const st = await lstat(full).catch(() => undefined);
  if (!st) return undefined;
  if (st.isSymbolicLink()) return { mode: SYMLINK, oid: hashBlob(Buffer.from(await readlink(full))) };
  if (!st.isFile()) return undefined;
  return { mode: st.mode & 0o100 ? 0o100755 : 0o100644, oid: hashBlob(await readFile(full)) };
}

async function listFiles(dir: string, path: string): Promise<string[]> {
  const entries = await readdir(join(dir, path), { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => `${path}/${join(e.parentPath, e.name).slice(join(dir, path).length + 1)}`);
}

export function ancestors(path: string): string[] {
  const parts = path.split("/");
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
}
