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
  const changes: Change[] = [];
  await diffInto(repo, before, after, "", changes);
  return changes;
}

/**
 * Appends the changes below `prefix` ("" or "a/b/") to `changes`, each path
 * built once: a first deploy lists every file, and copying each change up
 * through every level above it cost 50k-file trees ~100 ms.
 */
async function diffInto(repo: Repository, before: string | undefined, after: string | undefined, prefix: string, changes: Change[]): Promise<void> {
  if (before === after) return;
  const [a, b] = await Promise.all([readTree(repo, before), readTree(repo, after)]);
  for (const name of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(name);
    const y = b.get(name);
    if (x && y && x.oid === y.oid && x.mode === y.mode) continue;
    const xTree = x?.mode === TREE ? x.oid : undefined;
    const yTree = y?.mode === TREE ? y.oid : undefined;
    const xBlob = x && !xTree ? x : undefined;
    const yBlob = y && !yTree ? y : undefined;
    if (xBlob || yBlob) changes.push({ path: prefix + name, before: xBlob, after: yBlob });
    if (xTree || yTree) await diffInto(repo, xTree, yTree, `${prefix}${name}/`, changes);
  }
}

/**
 * The entries of the directory at `path` ("a/b") in `tree`, or undefined when
 * there is no such directory.
 */
export async function readTreeAt(repo: Repository, tree: string, path: string): Promise<Map<string, TreeEntry> | undefined> {
  let entries = await readTree(repo, tree);
  for (const name of path.split("/").filter(Boolean)) {
    const entry = entries.get(name);
    if (entry?.mode !== TREE) return undefined;
    entries = await readTree(repo, entry.oid);
  }
  return entries;
}

async function readTree(repo: Repository, oid: string | undefined): Promise<Map<string, TreeEntry>> {
  const entries = new Map<string, TreeEntry>();
  if (!oid) return entries;
  for (const { name, mode, oid: id } of await readTreeEntries(repo, oid)) entries.set(name, { mode, oid: id });
  return entries;
}

/** One entry of one tree object: a name in that directory, with its mode and object id. */
export interface NamedTreeEntry extends TreeEntry {
  name: string;
}

/**
 * The entries of the tree object `oid`, in the tree's order, each name
 * checked as safe to check out (UNSAFE_TREE otherwise, as for a corrupt tree).
 * For walks that go directory by directory instead of listing every path.
 */
export async function readTreeEntries(repo: Repository, oid: string): Promise<NamedTreeEntry[]> {
  const data = await repo.objects.readAs(oid, "tree");
  // One Buffer view for the whole object: names and ids are sliced from it without a copy each.
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const entries: NamedTreeEntry[] = [];
  // Entries: "<octal mode> <name>\0" and a 20-byte binary id, back to back.
  let pos = 0;
  while (pos < buf.length) {
    const space = buf.indexOf(0x20, pos);
    const nul = buf.indexOf(0, space + 1);
    if (space < 0 || nul < 0 || nul + 21 > buf.length) throw corruptTree(oid);
    const name = buf.toString("utf8", space + 1, nul);
    checkEntryName(name, oid);
    entries.push({ name, mode: normalizeMode(parseMode(buf, pos, space, oid)), oid: buf.toString("hex", nul + 1, nul + 21) });
    pos = nul + 21;
  }
  return entries;
}

/** The octal digits of an entry's mode; anything else is a corrupt tree, never a NaN that would pass for a file. */
function parseMode(buf: Buffer, start: number, end: number, tree: string): number {
  if (end === start || end - start > 7) throw corruptTree(tree);
  let mode = 0;
  for (let i = start; i < end; i++) {
    const digit = buf[i]! - 0x30;
    if (digit < 0 || digit > 7) throw corruptTree(tree);
    mode = mode * 8 + digit;
  }
  return mode;
}

function corruptTree(tree: string): GitError {
  return new GitError("UNSAFE_TREE", `tree ${tree} is corrupt`);
}

/** Old git wrote modes like 100664; like git, anything that is not a tree, link or submodule is a file, executable or not. */
function normalizeMode(mode: number): number {
  if (mode === TREE || mode === 0o120000 || mode === 0o160000) return mode;
  return mode & 0o100 ? 0o100755 : 0o100644;
}

const ORDINARY_NAME = /^[\w-][\w.-]*$/;

/**
 * A hostile repository can hold tree entries git itself would refuse to check
 * out; writing them could escape the work tree or overwrite .git. Like git's
 * verify_path(), this also refuses names that some filesystems read as ".git":
 * any case, trailing dots or spaces, HFS+ ignorable characters, an NTFS stream
 * suffix, or the 8.3 short name GIT~1.
 */
function checkEntryName(name: string, tree: string): void {
  // Most names are plain ASCII words that cannot be any of those: no leading
  // dot, no "~", space, separator or invisible character. Spares the full check.
  if (ORDINARY_NAME.test(name)) return;
  const visible = name.replace(/[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g, "");
  const dotGit = visible.split(":")[0]!.toLowerCase().replace(/[. ]+$/, "");
  if (
    name === "" ||
    visible === "." ||
    visible === ".." ||
    name.includes("/") ||
    name.includes("\\") ||
    name.includes("\0") ||
    dotGit === ".git" ||
    /^\.?git~[1-9]$/.test(dotGit)
  ) {
    throw unsafeEntry(name, tree);
  }
}

function unsafeEntry(name: string, tree: string, cause?: unknown): GitError {
  return new GitError("UNSAFE_TREE", `tree ${tree} has an entry named ${JSON.stringify(name)}, which is never checked out`, { cause });
}
