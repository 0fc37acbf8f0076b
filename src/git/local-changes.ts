import { lstat, readFile, readlink, readdir } from "node:fs/promises";
import { join } from "node:path";
import { hashBlob } from "./hash-blob.ts";
import { statMatches, type IndexEntry } from "./index-file.ts";
import type { Change, TreeEntry } from "./tree-diff.ts";
import { forEachLimit } from "../util/for-each-limit.ts";

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
  await forEachLimit([...index.values()], 32, async (entry) => {
    if (entry.mode === GITLINK) return;
    // Under a file or symlink that took the place of a tracked directory the entry is gone,
    // and looking further would follow the symlink out of the tree.
    const state = (await nonDirectoryAncestor(entry.path)) ? "missing" : await compareWithEntry(dir, entry, targets.get(entry.path), indexMtimeSeconds, deleted.has(entry.path));
    if (state === "modified") modified.push(entry.path);
    if (state === "missing") missing.push(entry.path);
  });

  // Every path the checkout will write: the commit's additions and modifications, and missing tracked files it restores.
  const writes = [...changes.flatMap((c) => (c.after ? [c.path] : [])), ...missing.filter((path) => !targets.has(path))];
  const untracked = new Set<string>();
  for (const path of writes) {
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
  const kinds = new Map<string, Promise<"directory" | "missing" | "other">>();
  const kindOf = (path: string) => {
    let kind = kinds.get(path);
    if (!kind) {
      kind = lstat(join(dir, path)).then(
        (st) => (st.isDirectory() ? "directory" : "other"),
        () => "missing",
      );
      kinds.set(path, kind);
    }
    return kind;
  };
  return async (path) => {
    for (const parent of ancestors(path)) {
      const kind = await kindOf(parent);
      if (kind === "other") return parent;
      if (kind === "missing") return undefined;
    }
    return undefined;
  };
}

async function compareWithEntry(dir: string, entry: IndexEntry, target: TreeEntry | undefined, indexMtimeSeconds: number, deleting: boolean): Promise<"clean" | "modified" | "missing"> {
  const st = await lstat(join(dir, entry.path), { bigint: true }).catch(() => undefined);
  if (!st) return "missing";
  // A tracked file this change deletes, found as a directory: a deploy killed
  // half-way through a file-to-directory swap had already replaced it (HEAD
  // and the index still name the file). The file is gone, as the target
  // wants; what the directory holds is checked like any path the target writes.
  if (deleting && st.isDirectory()) return "missing";
  // "Racy git": a file changed in the same second the index was written keeps matching stat data.
  const racy = entry.mtimeSeconds >= indexMtimeSeconds;
  if (!racy && statMatches(entry, st)) return "clean";
  const actual = await describeFile(dir, entry.path);
  if (!actual) return "modified";
  const same = (e: { mode: number; oid: string } | undefined) => e !== undefined && e.oid === actual.oid && e.mode === actual.mode;
  return same(entry) || same(target) ? "clean" : "modified";
}

/** True when something untracked sits at `path` and is not what the target puts there. */
async function blocksPath(dir: string, path: string, target: TreeEntry, index: Map<string, IndexEntry>, deleted: Set<string>): Promise<boolean> {
  const st = await lstat(join(dir, path)).catch(() => undefined);
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
