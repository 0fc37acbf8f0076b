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
  const data = await repo.objects.readAs(oid, "tree");
  // Entries: "<octal mode> <name>\0" and a 20-byte binary id, back to back.
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    const nul = data.indexOf(0, space + 1);
    if (space < 0 || nul < 0 || nul + 21 > data.length) throw new GitError("UNSAFE_TREE", `tree ${oid} is corrupt`);
    const mode = parseInt(Buffer.from(data.subarray(pos, space)).toString("latin1"), 8);
    const name = utf8.decode(data.subarray(space + 1, nul));
    checkEntryName(name, oid);
    entries.set(name, { mode: normalizeMode(mode), oid: Buffer.from(data.subarray(nul + 1, nul + 21)).toString("hex") });
    pos = nul + 21;
  }
  return entries;
}

const utf8 = new TextDecoder();

/** Old git wrote modes like 100664; like git, anything that is not a tree, link or submodule is a file, executable or not. */
function normalizeMode(mode: number): number {
  if (mode === TREE || mode === 0o120000 || mode === 0o160000) return mode;
  return mode & 0o100 ? 0o100755 : 0o100644;
}

/**
 * A hostile repository can hold tree entries git itself would refuse to check
 * out; writing them could escape the work tree or overwrite .git. Like git's
 * verify_path(), this also refuses names that some filesystems read as ".git":
 * any case, trailing dots or spaces, HFS+ ignorable characters, an NTFS stream
 * suffix, or the 8.3 short name GIT~1.
 */
function checkEntryName(name: string, tree: string): void {
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
