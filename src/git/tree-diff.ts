import fs from "node:fs";
import git from "isomorphic-git";
import { GitError } from "./git-error.ts";
import type { Repository } from "./repository.ts";

/** A blob, symlink or submodule as a tree records it. */
export interface TreeEntry {
  mode: number; // 0o100644, 0o100755, 0o120000 (symlink) or 0o160000 (submodule)
  oid: string;
}

/** One path whose tree entry differs between two commits; a missing side means added or deleted. */
export interface Change {
  path: string;
  before: TreeEntry | undefined;
  after: TreeEntry | undefined;
}

const TREE = 0o040000;

/**
 * Lists the non-tree paths that differ between two trees, descending only
 * into subtrees whose ids differ, so the cost follows the size of the change,
 * not of the tree. A path that turns from a file into a directory appears as
 * the file's deletion plus additions below it (and the reverse).
 */
export async function diffTrees(repo: Repository, before: string | undefined, after: string | undefined): Promise<Change[]> {
  if (before === after) return [];
  const [a, b] = await Promise.all([readTree(repo, before), readTree(repo, after)]);
  const names = [...new Set([...a.keys(), ...b.keys()])];
  const parts = await Promise.all(names.map((name) => diffEntry(repo, name, a.get(name), b.get(name))));
  return parts.flat();
}

async function diffEntry(repo: Repository, path: string, a: TreeEntry | undefined, b: TreeEntry | undefined): Promise<Change[]> {
  if (a && b && a.oid === b.oid && a.mode === b.mode) return [];
  const aTree = a?.mode === TREE ? a.oid : undefined;
  const bTree = b?.mode === TREE ? b.oid : undefined;
  const here: Change[] = [];
  const aBlob = a && !aTree ? a : undefined;
  const bBlob = b && !bTree ? b : undefined;
  if (aBlob || bBlob) here.push({ path, before: aBlob, after: bBlob });
  if (!aTree && !bTree) return here;
  const below = await diffTrees(repo, aTree, bTree);
  return [...here, ...below.map((c) => ({ ...c, path: `${path}/${c.path}` }))];
}

async function readTree(repo: Repository, oid: string | undefined): Promise<Map<string, TreeEntry>> {
  const entries = new Map<string, TreeEntry>();
  if (!oid) return entries;
  let tree;
  try {
    ({ tree } = await git.readTree({ fs, gitdir: repo.gitdir, oid, cache: repo.cache }));
  } catch (cause) {
    // isomorphic-git applies git's verify_path() rules itself while parsing the tree, so most
    // hostile names surface here as its own error, which must still be reported as UNSAFE_TREE.
    const err = cause as { code?: string; data?: { filepath?: string } };
    if (err.code === "UnsafeFilepathError") throw unsafeEntry(String(err.data?.filepath), oid, cause);
    throw cause;
  }
  for (const entry of tree) {
    checkEntryName(entry.path, oid);
    entries.set(entry.path, { mode: parseInt(entry.mode, 8), oid: entry.oid });
  }
  return entries;
}

/**
 * A hostile repository can hold tree entries git itself would refuse to check
 * out; writing them could escape the work tree or overwrite .git.
 */
function checkEntryName(name: string, tree: string): void {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0") || name.toLowerCase() === ".git") {
    throw unsafeEntry(name, tree);
  }
}

function unsafeEntry(name: string, tree: string, cause?: unknown): GitError {
  return new GitError("UNSAFE_TREE", `tree ${tree} has an entry named ${JSON.stringify(name)}, which is never checked out`, { cause });
}
