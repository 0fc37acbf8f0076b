import fs from "node:fs";
import { mkdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import git from "isomorphic-git";
import { GitError } from "./git-error.ts";

/**
 * A work tree with its .git directory, and the object cache isomorphic-git
 * keeps between calls (packfile indexes), shared by every step of a deploy.
 */
export interface Repository {
  dir: string;
  gitdir: string;
  cache: object;
  /** The first directory initRepository had to create, if any. */
  createdDir?: string | undefined;
}

export async function isCheckout(dir: string): Promise<boolean> {
  return (await stat(join(dir, ".git")).catch(() => undefined))?.isDirectory() ?? false;
}

export async function openRepository(dir: string): Promise<Repository> {
  if (!(await isCheckout(dir))) throw new GitError("NOT_A_CHECKOUT", `${dir} is not a git checkout (no .git directory)`);
  return { dir, gitdir: join(dir, ".git"), cache: {} };
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
  try {
    const { commit } = await git.readCommit({ fs, gitdir: repo.gitdir, oid, cache: repo.cache });
    return commit.tree;
  } catch (cause) {
    throw new GitError("COMMIT_NOT_FOUND", `commit ${oid} is not in the repository`, { cause });
  }
}

/** The commit an oid names: itself, or for an annotated tag the commit it points to. */
export async function peelToCommit(repo: Repository, oid: string): Promise<string> {
  try {
    return (await git.readCommit({ fs, gitdir: repo.gitdir, oid, cache: repo.cache })).oid;
  } catch (cause) {
    throw new GitError("COMMIT_NOT_FOUND", `commit ${oid} is not in the repository`, { cause });
  }
}

/** How far back `isAncestor` looks before it gives up and answers "not known to be older". */
export const ANCESTRY_DEPTH = 10_000;

/** True when `older` is a strict ancestor of `newer`, within ANCESTRY_DEPTH commits. */
export async function isAncestor(repo: Repository, older: string, newer: string): Promise<boolean> {
  if (older === newer) return false;
  try {
    return await git.isDescendent({ fs, gitdir: repo.gitdir, oid: newer, ancestor: older, depth: ANCESTRY_DEPTH, cache: repo.cache });
  } catch {
    // Too deep, or history the checkout does not have: not known to be older, so the deploy goes ahead.
    return false;
  }
}
