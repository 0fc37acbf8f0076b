import { chmodSync, lstatSync, readdirSync, unlinkSync } from "node:fs";
import { rm } from "node:fs/promises";
import { ancestors } from "../git/local-changes.ts";
import type { TreeEntry } from "../git/tree-diff.ts";
import { createYielder } from "../util/yielder.ts";

const EXECUTABLE = 0o100755;
const SYMLINK = 0o120000;
const GITLINK = 0o160000;

/**
 * Prepares the tree of a recycled release (see claimRecyclableRelease) to
 * become a fresh release of a new commit: removes everything at `dir` the
 * new tree does not hold, and returns the paths whose file may stay as it
 * is. The caller writes every other path of the new tree.
 *
 * A file stays only when it is exactly what the recycled release was sealed
 * with and the new commit has the same entry there: its path is not among
 * `changed` (the diff between the two commits), and its ctime is older than
 * the seal (as for the copy in materializeRelease: any write, chmod, rename
 * or link since, by a hook or by hand, moves ctime past it). It must also be
 * the inode's only link, so that a write into the new release can never
 * reach another one. Untracked files and directories go, whatever made them.
 *
 * The walk never follows a symlink: one where a directory was is removed
 * like any other stray entry, never entered. Directories get back the mode
 * a fresh release's would have. Every entry is lstat()ed synchronously (a
 * promise per file costs several times more on 50,000 files), yielding every
 * few milliseconds so webhooks are still answered.
 */
export async function reconcileRecycledTree(dir: string, wanted: Map<string, TreeEntry>, changed: Set<string>, sealedAt: bigint): Promise<Set<string>> {
  const dirs = new Set<string>([""]);
  for (const [path, entry] of wanted) {
    for (const parent of ancestors(path)) dirs.add(parent);
    // A submodule is an empty directory, as a fresh checkout leaves it.
    if (entry.mode === GITLINK) dirs.add(path);
  }
  const umask = process.umask();
  const dirMode = 0o777 & ~umask;
  const kept = new Set<string>();
  const maybeYield = createYielder();

  const visit = async (rel: string): Promise<void> => {
    // Concatenated, not join()ed: names from readdir hold no separators, and join() costs as much as the lstat.
    const here = rel === "" ? dir : `${dir}/${rel}`;
    if ((lstatSync(here).mode & 0o7777) !== dirMode) chmodSync(here, dirMode);
    for (const entry of readdirSync(here, { withFileTypes: true })) {
      await maybeYield();
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
      const full = `${here}/${entry.name}`;
      if (entry.isDirectory()) {
        if (dirs.has(path)) await visit(path);
        else await rm(full, { recursive: true, force: true });
        continue;
      }
      const want = wanted.get(path);
      // Not in the new tree, or where it needs a directory: removed. A stale
      // file the new tree also has is left to be renamed over.
      if (want === undefined || dirs.has(path)) unlinkSync(full);
      else if (!changed.has(path) && asSealed(full, want.mode, sealedAt, umask)) kept.add(path);
    }
  };
  await visit("");
  return kept;
}

/** True when the file at `full` is still as it was written before the seal, and of the kind `mode` asks for. */
function asSealed(full: string, mode: number, sealedAt: bigint, umask: number): boolean {
  const st = lstatSync(full, { bigint: true, throwIfNoEntry: false });
  if (!st || st.ctimeNs >= sealedAt || st.nlink !== 1n) return false;
  if (mode === SYMLINK) return st.isSymbolicLink();
  // The permissions a fresh write gets (writeEntry: 0o777 or 0o666, less the umask).
  const perm = (mode === EXECUTABLE ? 0o777 : 0o666) & ~umask;
  return st.isFile() && Number(st.mode & 0o7777n) === perm;
}
