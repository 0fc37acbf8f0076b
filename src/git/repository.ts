import fs from "node:fs";
import { mkdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import git from "isomorphic-git";
import { GitError } from "./git-error.ts";
import { openObjectStore, type ObjectStore } from "./object-store.ts";

/**
 * A work tree with its .git directory, and the object reader every step of a
 * deploy shares (plus isomorphic-git's own cache, for code that still uses it).
 */
export interface Repository {
  dir: string;
  gitdir: string;
  objects: ObjectStore;
  cache: object;
  /** The first directory initRepository had to create, if any. */
  createdDir?: string | undefined;
  /** What initStore created inside a DIR that existed (and was empty). */
  createdPaths?: string[] | undefined;
}

export async function isCheckout(dir: string): Promise<boolean> {
  return (await stat(join(dir, ".git")).catch(() => undefined))?.isDirectory() ?? false;
}

export async function openRepository(dir: string): Promise<Repository> {
  if (!(await isCheckout(dir))) throw new GitError("NOT_A_CHECKOUT", `${dir} is not a git checkout (no .git directory)`);
  return repositoryAt(dir, join(dir, ".git"));
}

/** A repository whose git directory is `gitdir` (the atomic strategy keeps it outside `dir`). */
export function repositoryAt(dir: string, gitdir: string): Repository {
  return { dir, gitdir, objects: openObjectStore(gitdir), cache: {} };
}

/** Creates DIR (and its parents) as an empty repository whose origin is `remote`. */
export async function initRepository(dir: string, remote: string): Promise<Repository> {
  const created = await mkdir(dir, { recursive: true });
  await git.init({ fs, dir, defaultBranch: "main" });
  await git.addRemote({ fs, dir, remote: "origin", url: remote, force: true });
  return { ...(await openRepository(dir)), createdDir: created };
}

/** Undoes initRepository: removes .git, and DIR itself if initRepository created it. */
export async function discardRepository(repo: Repository): Promise<void> {
  const paths = repo.createdDir ? [repo.createdDir] : (repo.createdPaths ?? [repo.gitdir]);
  for (const path of paths) await rm(path, { recursive: true, force: true });
}

/**
 * A git directory without a work tree (the atomic strategy's object store in
 * `layout.gitdir`); `dir` is the target directory the releases live in.
 * discardRepository() removes what this created: DIR if it was missing, else
 * the layout's own entries (DIR was empty).
 */
export async function initStore(dir: string, layout: { gitdir: string; privateDir: string; releases: string }, remote: string): Promise<Repository> {
  const createdDir = await mkdir(dir, { recursive: true });
  const { gitdir } = layout;
  await mkdir(gitdir, { recursive: true });
  await git.init({ fs, dir: gitdir, bare: true, defaultBranch: "main" });
  await git.addRemote({ fs, gitdir, remote: "origin", url: remote, force: true });
  return { ...repositoryAt(dir, gitdir), createdDir, createdPaths: [layout.privateDir, layout.releases] };
}

export async function readOriginUrl(dir: string, gitdir = join(dir, ".git")): Promise<string | undefined> {
  const url: unknown = await git.getConfig({ fs, gitdir, path: "remote.origin.url" });
  return typeof url === "string" ? url : undefined;
}

export async function readCurrentBranch(dir: string, gitdir = join(dir, ".git")): Promise<string | undefined> {
  return (await git.currentBranch({ fs, gitdir, fullname: false, test: true })) ?? undefined;
}

/** The commit HEAD points to, or undefined in a repository with no commit yet. */
export async function readHeadCommit(repo: Repository): Promise<string | undefined> {
  return git.resolveRef({ fs, gitdir: repo.gitdir, ref: "HEAD" }).catch(() => undefined);
}

/**
 * Points HEAD at the deployed commit the way `git checkout` would leave it:
 * on the branch for a branch deploy, detached for a tag.
 */
export async function setHead(repo: Repository, ref: string, commit: string): Promise<void> {
  const { gitdir } = repo;
  if (ref.startsWith("refs/heads/")) {
    await git.writeRef({ fs, gitdir, ref, value: commit, force: true });
    await git.writeRef({ fs, gitdir, ref: "HEAD", value: ref, symbolic: true, force: true });
  } else {
    await git.writeRef({ fs, gitdir, ref: "HEAD", value: commit, force: true });
  }
}

export async function readCommitTree(repo: Repository, oid: string): Promise<string> {
  let commit: Uint8Array;
  try {
    commit = await repo.objects.readAs(oid, "commit");
  } catch (cause) {
    throw new GitError("COMMIT_NOT_FOUND", `commit ${oid} is not in the repository`, { cause });
  }
  // A commit starts with its tree: "tree <40 hex>\n".
  const tree = /^tree ([0-9a-f]{40})\n/.exec(Buffer.from(commit.subarray(0, 46)).toString("latin1"))?.[1];
  if (!tree) throw new GitError("COMMIT_NOT_FOUND", `commit ${oid} is corrupt (no tree)`);
  return tree;
}

/** The commit an oid names: itself, or for an annotated tag (or a chain of them) the commit it points to. */
export async function peelToCommit(repo: Repository, oid: string): Promise<string> {
  try {
    for (let hops = 0; hops < 16; hops++) {
      const object = await repo.objects.read(oid);
      if (object.type === "commit") return oid;
      // A tag starts with the object it points to: "object <40 hex>\n".
      const target = object.type === "tag" ? /^object ([0-9a-f]{40})\n/.exec(Buffer.from(object.data.subarray(0, 48)).toString("latin1"))?.[1] : undefined;
      if (!target) break;
      oid = target;
    }
  } catch (cause) {
    throw new GitError("COMMIT_NOT_FOUND", `commit ${oid} is not in the repository`, { cause });
  }
  throw new GitError("COMMIT_NOT_FOUND", `${oid} does not name a commit`);
}

/** How far back `isAncestor` looks before it gives up and answers "not known to be older". */
export const ANCESTRY_DEPTH = 10_000;

/**
 * True when `older` is a strict ancestor of `newer`, within ANCESTRY_DEPTH
 * commits. A shallow checkout lacks the parents of its boundary commits: the
 * walk stops there, so "not found" means "not known to be older".
 */
export async function isAncestor(repo: Repository, older: string, newer: string): Promise<boolean> {
  if (older === newer) return false;
  const seen = new Set<string>([newer]);
  const queue = [newer];
  while (queue.length > 0 && seen.size <= ANCESTRY_DEPTH) {
    const commit = await repo.objects.readAs(queue.shift()!, "commit").catch(() => undefined);
    if (!commit) continue;
    // Parents are header lines, which end at the first blank line; the message may say anything.
    const text = Buffer.from(commit.buffer, commit.byteOffset, commit.length).toString("latin1");
    const end = text.indexOf("\n\n");
    const header = end < 0 ? text : text.slice(0, end);
    for (const [, parent] of header.matchAll(/^parent ([0-9a-f]{40})$/gm)) {
      if (parent === older) return true;
      if (!seen.has(parent!)) {
        seen.add(parent!);
        queue.push(parent!);
      }
    }
  }
  return false;
}
