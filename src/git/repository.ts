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
}

export async function isCheckout(dir: string): Promise<boolean> {
  return (await stat(join(dir, ".git")).catch(() => undefined))?.isDirectory() ?? false;
}

export async function openRepository(dir: string): Promise<Repository> {
  if (!(await isCheckout(dir))) throw new GitError("NOT_A_CHECKOUT", `${dir} is not a git checkout (no .git directory)`);
  const gitdir = join(dir, ".git");
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
  await rm(repo.createdDir ?? repo.gitdir, { recursive: true, force: true });
}

export async function readOriginUrl(dir: string): Promise<string | undefined> {
  const url: unknown = await git.getConfig({ fs, dir, path: "remote.origin.url" });
  return typeof url === "string" ? url : undefined;
}

export async function readCurrentBranch(dir: string): Promise<string | undefined> {
  return (await git.currentBranch({ fs, dir, fullname: false, test: true })) ?? undefined;
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
