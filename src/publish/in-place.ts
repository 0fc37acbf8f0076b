import { existsSync, lstatSync } from "node:fs";
import { readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { applyChanges } from "../git/checkout.ts";
import { GitError } from "../git/git-error.ts";
import { entryFromStats, readIndex, writeIndex, type IndexEntry } from "../git/index-file.ts";
import { findObstacles } from "../git/local-changes.ts";
import { readCommitTree, setHead, type Repository } from "../git/repository.ts";
import { diffTrees, type Change } from "../git/tree-diff.ts";
import { errorMessage } from "../util/error-message.ts";

export interface InPlaceUpdate {
  from: string | undefined;
  to: string;
  ref: string;
  /** Overwrite local modifications and untracked obstacles instead of failing. */
  force: boolean;
}

export interface InPlaceResult {
  changed: number;
}

/**
 * Moves the checkout from `from` to `to` the way `git checkout` does: only
 * changed paths are written, untracked and ignored files are left alone, and
 * the index and HEAD end up as git would leave them, so `git status` is clean.
 *
 * Nothing is written until every obstacle is known. HEAD moves last: if the
 * process dies half-way, HEAD still names the old commit and running the same
 * deploy again converges, because files already equal to their target count
 * as clean, and temp files the dead process left beside them are removed.
 */
export async function updateInPlace(repo: Repository, update: InPlaceUpdate): Promise<InPlaceResult> {
  // Until a first deploy has written its index, its staging directory (see
  // checkOutBeside) may be a killed attempt's. Ours by name, never the site's.
  if (!existsSync(join(repo.gitdir, "index"))) await rm(join(repo.dir, STAGING), { recursive: true, force: true });
  const [fromTree, toTree] = await Promise.all([
    update.from ? readCommitTree(repo, update.from) : undefined,
    readCommitTree(repo, update.to),
  ]);
  const changes = await diffTrees(repo, fromTree, toTree);
  const index = new Map((await readIndex(repo.gitdir)).map((e) => [e.path, e]));
  const indexMtime = (await stat(join(repo.gitdir, "index")).catch(() => undefined))?.mtimeMs ?? 0;

  // Into a directory holding only .git nothing can be in the way: the scan (an lstat per path) is skipped.
  const empty = await isEmptyWorkTree(repo, update, index, changes);
  const obstacles = empty ? { modified: [], untracked: [], missing: [] } : await findObstacles(repo.dir, index, changes, Math.floor(indexMtime / 1000));
  if (!update.force) {
    if (obstacles.modified.length) {
      throw new GitError("LOCAL_CHANGES", `local changes to tracked files would be lost: ${list(obstacles.modified)} (commit or discard them, or deploy with --force)`);
    }
    if (obstacles.untracked.length) {
      throw new GitError("UNTRACKED_CONFLICT", `untracked files would be overwritten: ${list(obstacles.untracked)} (move them away, or deploy with --force)`);
    }
  }

  const restores = restoreMissing(obstacles.missing, changes, index);
  let written: IndexEntry[];
  try {
    written = empty
      ? await checkOutBeside(repo, changes)
      : await applyChanges(repo, repo.dir, [...changes, ...restores], { clearObstacles: update.force });
  } catch (err) {
    await rollBack(repo, changes, update.from, err);
    throw err;
  }

  for (const change of changes) if (!change.after) index.delete(change.path);
  for (const entry of written) index.set(entry.path, entry);
  await writeIndex(repo.gitdir, [...index.values()]);
  await setHead(repo, update.ref, update.to);
  return { changed: changes.length };
}

/**
 * A write failed half-way (a full disk, a read-only mount, DIR removed):
 * some paths may hold the new commit's files while HEAD and the index still
 * name the old one. Writing the old commit's version of every changed path
 * back makes the site the old tree again rather than a mix of the two (its
 * additions are removed first, which also frees the space they took). If
 * even that fails, the error says so: the work tree is then partly updated,
 * HEAD names the old commit, and a later deploy of the same commit counts the
 * files already written as clean, so it converges.
 */
async function rollBack(repo: Repository, changes: Change[], from: string | undefined, err: unknown): Promise<void> {
  const undo = changes.map(({ path, before, after }) => ({ path, before: after, after: before }));
  try {
    await applyChanges(repo, repo.dir, undo, { clearObstacles: false });
  } catch (undoErr) {
    if (err instanceof Error) {
      const why = errorMessage(undoErr);
      err.message += ` (putting the previous files back failed too: ${why}; the work tree is partly updated, HEAD stays at ${from ?? "no commit"})`;
    }
  }
}

/** Where a first deploy builds the tree, inside DIR, before moving it into place. */
const STAGING = ".hooksd-first-checkout";

/** A first deploy into a directory that holds nothing but .git, whose tree does not use the staging name. */
async function isEmptyWorkTree(repo: Repository, update: InPlaceUpdate, index: Map<string, IndexEntry>, changes: Change[]): Promise<boolean> {
  if (update.from !== undefined || index.size > 0) return false;
  if (changes.some((c) => c.path === STAGING || c.path.startsWith(`${STAGING}/`))) return false;
  return (await readdir(repo.dir)).every((name) => name === ".git");
}

/**
 * A first deploy writes its files at their final names in a staging directory
 * beside .git, then renames each top-level entry into DIR. That spares the
 * temp file and rename per file an update needs (nothing is served from the
 * staging directory, so nobody sees a half-written file), and keeps a crash
 * harmless: killed while writing, the staging directory is removed by the
 * redo; killed while moving, what was moved is complete and already what the
 * target wants, which the redo counts as clean.
 */
async function checkOutBeside(repo: Repository, changes: Change[]): Promise<IndexEntry[]> {
  const staging = join(repo.dir, STAGING);
  let entries: IndexEntry[];
  try {
    entries = await applyChanges(repo, staging, changes, { clearObstacles: false, fresh: true });
  } catch (err) {
    // A full disk: what was written goes, and the space with it.
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  for (const name of await readdir(staging)) await rename(join(staging, name), join(repo.dir, name));
  await rmdir(staging);
  // rename() gives a moved file or symlink a new ctime; what sits in a moved directory keeps its own.
  return entries.map((e) => (e.path.includes("/") ? e : entryFromStats(e.path, e.oid, e.mode, lstatSync(join(repo.dir, e.path), { bigint: true }))));
}

/** Tracked files deleted by hand that this deploy does not touch are written back. */
function restoreMissing(missing: string[], changes: Change[], index: Map<string, IndexEntry>): Change[] {
  const touched = new Set(changes.map((c) => c.path));
  return missing
    .filter((path) => !touched.has(path))
    .map((path) => {
      const entry = index.get(path)!;
      return { path, before: undefined, after: { mode: entry.mode, oid: entry.oid } };
    });
}

function list(paths: string[]): string {
  const shown = paths.slice(0, 20).join(", ");
  return paths.length > 20 ? `${shown} and ${paths.length - 20} more` : shown;
}
