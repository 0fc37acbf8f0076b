import { chmodSync, constants, lstatSync, mkdirSync, readdirSync, unlinkSync, type BigIntStats } from "node:fs";
import { rm } from "node:fs/promises";
import type { Repository } from "../git/repository.ts";
import { readTreeEntries, type Change, type NamedTreeEntry, type TreeEntry } from "../git/tree-diff.ts";
import { createYielder } from "../util/yielder.ts";
import { dirIdOf, type DirIds } from "./release-dirs.ts";

const TREE = 0o040000;
const EXECUTABLE = 0o100755;
const SYMLINK = 0o120000;
const GITLINK = 0o160000;
const { S_IFMT, S_IFREG, S_IFLNK } = constants;
/** A float ctime (ms) this close to the seal cannot tell before from after: the exact one (ns) is read then. */
const NEAR_SEAL_MS = 0.01;

/** What the recycled release held when it was sealed (see claimRecyclableRelease). */
export interface SealedTree {
  /** Its commit's tree; undefined when the store lost it, and then no file is kept. */
  tree: string | undefined;
  sealedAt: bigint;
  dirIds: DirIds;
}

export interface ReconciledTree {
  /** The paths of the new tree still to write (additions only: nothing is left to delete). */
  writes: Change[];
  /** Files (and submodule directories) left in place. */
  kept: number;
  /** The identities of the directories the walk kept. */
  dirIds: DirIds;
  /** The new tree's other directories: writing `writes` creates them (those that hold anything). */
  createdDirs: string[];
}

/**
 * Prepares the tree of a recycled release (claimRecyclableRelease), at `dir`,
 * to become a release of the new tree `tree`: removes everything there that
 * `tree` does not hold, and returns what is left to write.
 *
 * It goes directory by directory through the new tree's objects, never
 * listing every path. A file stays only when it is exactly what the recycled
 * release was sealed with and the old tree had the same entry there: its
 * ctime is older than the seal (any write, chmod, rename or link since, by a
 * hook or by hand, moves it past), it is the inode's only link (so a write
 * into the new release never reaches another one), and its kind and
 * permission bits are what a fresh write gives.
 *
 * Most directories are not listed at all. One whose tree is the same as the
 * old one and whose own ctime is older than the seal has had no entry
 * added, removed or renamed since: it holds exactly the old tree's names, so
 * one lstat per name is all it costs. Any other directory is listed and
 * whatever the new tree does not hold there is removed (never following a
 * symlink: one where a directory was is removed like any stray entry).
 *
 * A directory is trusted only if it is the very one that stood at its path
 * when the release was sealed (release-dirs.ts): a hook that renamed a
 * directory into another's place moved files to new paths without changing
 * their ctime. An impostor goes with everything below it, and that subtree is
 * written afresh. Directories get back the mode a fresh release's have.
 *
 * Files get a plain lstat, not the BigInt one (a little cheaper, and no
 * BigInts to collect); only a ctime within NEAR_SEAL_MS of the seal is read
 * again exactly. Everything runs synchronously (a promise per file costs
 * several times more on 50,000 files), yielding every 64 entries once a few
 * milliseconds have passed, so webhooks are still answered.
 *
 * A kill half-way leaves an unsealed directory that nothing serves or reuses
 * (see claimRecyclableRelease).
 */
export async function reconcileRecycledTree(repo: Repository, dir: string, tree: string, sealed: SealedTree): Promise<ReconciledTree> {
  const { sealedAt } = sealed;
  const sealMs = Number(sealedAt) / 1e6;
  const umask = process.umask();
  const dirMode = 0o777 & ~umask;
  const result: ReconciledTree = { writes: [], kept: 0, dirIds: new Map(), createdDirs: [] };
  const maybeYield = createYielder();
  let steps = 0;
  const full = (path: string) => (path === "" ? dir : `${dir}/${path}`);
  const below = (path: string, name: string) => (path === "" ? name : `${path}/${name}`);
  const write = (path: string, after: TreeEntry) => result.writes.push({ path, before: undefined, after });

  /** True when the file at `path` is still as it was written before the seal, and of the kind `mode` asks for. */
  const fileAsSealed = (path: string, mode: number): boolean => {
    const st = lstatSync(`${dir}/${path}`, { throwIfNoEntry: false });
    if (!st || st.nlink !== 1 || st.ctimeMs >= sealMs + NEAR_SEAL_MS) return false;
    if (st.ctimeMs >= sealMs - NEAR_SEAL_MS && !(lstatSync(`${dir}/${path}`, { bigint: true }).ctimeNs < sealedAt)) return false;
    if (mode === SYMLINK) return (st.mode & S_IFMT) === S_IFLNK;
    // The permissions a fresh write gets (writeEntry: 0o777 or 0o666, less the umask).
    const perm = (mode === EXECUTABLE ? 0o777 : 0o666) & ~umask;
    return (st.mode & S_IFMT) === S_IFREG && (st.mode & 0o7777) === perm;
  };

  /** The directory at `path` is the one sealed there: recorded, and given back its mode. */
  const trusted = (path: string, st: BigIntStats): boolean => {
    const id = dirIdOf(st);
    if (sealed.dirIds.get(path) !== id) return false;
    if (Number(st.mode & 0o7777n) !== dirMode) chmodSync(full(path), dirMode);
    result.dirIds.set(path, id);
    return true;
  };

  /** Everything of the subtree `oid` is written at `path`; true when it holds anything (git trees can be empty). */
  const writeSubtree = async (path: string, oid: string): Promise<boolean> => {
    result.createdDirs.push(path);
    let holds = false;
    for (const entry of await readTreeEntries(repo, oid)) {
      const at = below(path, entry.name);
      if (entry.mode === TREE) holds = (await writeSubtree(at, entry.oid)) || holds;
      else {
        write(at, entry);
        if (entry.mode === GITLINK) result.createdDirs.push(at);
        holds = true;
      }
    }
    return holds;
  };

  /** Brings whatever is at `path` to the new subtree `oid` (the old tree had `old` there); true when it holds anything. */
  const reconcileDir = async (path: string, oid: string, old: string | undefined): Promise<boolean> => {
    const st = lstatSync(full(path), { bigint: true, throwIfNoEntry: false });
    if (st?.isDirectory() && trusted(path, st)) return visit(path, st, oid, old);
    if (st?.isDirectory()) await rm(full(path), { recursive: true, force: true });
    // A file or symlink where the new tree has a directory: unlinked, never followed.
    else if (st) unlinkSync(full(path));
    return writeSubtree(path, oid);
  };

  const visit = async (path: string, st: BigIntStats, oid: string, old: string | undefined): Promise<boolean> => {
    const entries = await readTreeEntries(repo, oid);
    const same = old === oid;
    // The same tree in a directory unchanged since the seal: exactly the old names are there, nothing to list.
    if (!same || st.ctimeNs >= sealedAt) await removeStrays(full(path), entries);
    const before = same || old === undefined ? undefined : new Map((await readTreeEntries(repo, old)).map((e) => [e.name, e]));
    let holds = false;
    for (const entry of entries) {
      if ((++steps & 63) === 0) await maybeYield();
      const at = below(path, entry.name);
      const was = same ? entry : before?.get(entry.name);
      if (entry.mode === TREE) {
        holds = (await reconcileDir(at, entry.oid, was?.mode === TREE ? was.oid : undefined)) || holds;
        continue;
      }
      holds = true;
      if (entry.mode === GITLINK) reconcileSubmodule(at, entry, was?.mode === GITLINK);
      else if (was?.oid === entry.oid && was.mode === entry.mode && fileAsSealed(at, entry.mode)) result.kept++;
      else write(at, entry);
    }
    // Only empty trees below: a fresh checkout has no directory here either.
    if (!holds && path !== "") {
      await rm(full(path), { recursive: true, force: true });
      result.dirIds.delete(path);
    }
    return holds;
  };

  /** A submodule is an empty directory, as a fresh checkout leaves it; one sealed empty and untouched since still is. */
  const reconcileSubmodule = (path: string, entry: NamedTreeEntry, wasSubmodule: boolean) => {
    const st = lstatSync(full(path), { bigint: true, throwIfNoEntry: false });
    if (wasSubmodule && st?.isDirectory() && st.ctimeNs < sealedAt && trusted(path, st)) {
      result.kept++;
      return;
    }
    // A directory there is cleared when this one is written (applyChanges clears obstacles); anything else goes now.
    if (st && !st.isDirectory()) unlinkSync(full(path));
    write(path, entry);
    result.createdDirs.push(path);
  };

  const root = lstatSync(dir, { bigint: true });
  if (root.isDirectory() && trusted("", root)) await visit("", root, tree, sealed.tree);
  else {
    await rm(dir, { recursive: true, force: true });
    mkdirSync(dir);
    await writeSubtree("", tree);
  }
  return result;
}

/** Removes the entries of the directory `full` that `entries` does not name. */
async function removeStrays(full: string, entries: NamedTreeEntry[]): Promise<void> {
  const names = new Set(entries.map((e) => e.name));
  for (const entry of readdirSync(full, { withFileTypes: true })) {
    if (names.has(entry.name)) continue;
    if (entry.isDirectory()) await rm(`${full}/${entry.name}`, { recursive: true, force: true });
    else unlinkSync(`${full}/${entry.name}`);
  }
}
