/**
 * A served remote plus a target for it, deployed through the real pipeline.
 * Tests only: the remote is native git behind `git http-backend`.
 */
import { expect } from "bun:test";
import * as v from "valibot";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { TargetSchema } from "../../src/config/schema.ts";
import type { LoadedTarget } from "../../src/config/loaded-target.ts";
import type { Secret } from "../../src/config/secret.ts";
import type { Credentials } from "../../src/config/secret.ts";
import { newDeployId } from "../../src/deploy/deploy-id.ts";
import { runDeploy, type DeployOutcome } from "../../src/deploy/pipeline.ts";
import type { HookRun } from "../../src/hooks/run-hook.ts";
import { createLogger } from "../../src/log.ts";
import { commitFiles, createRemote, expectTreeEquals, git, makeTempDir, push, removeTempDirs, type FileSpec } from "./git-fixture.ts";
import { startGitServer, type GitServer } from "./git-server.ts";

export interface Site {
  server: GitServer;
  bare: string;
  work: string;
  url: string;
  /** A fresh directory to deploy into (does not exist yet). */
  dir: string;
}

const servers: GitServer[] = [];

/** A remote served over smart HTTP (optionally behind basic auth) and a fresh target dir; removeSites() ends both. */
export async function createSite(prefix: string, auth?: { username: string; password: string }): Promise<Site> {
  const root = await makeTempDir(`${prefix}-remote`);
  const { bare, work } = await createRemote(root, "site.git");
  const server = await startGitServer({ root, ...(auth && { auth }) });
  servers.push(server);
  const dir = join(await makeTempDir(`${prefix}-target`), "site");
  return { server, bare, work, url: server.url("site.git"), dir };
}

/** Stops every site's git server and removes every temp dir; use in afterAll. */
export async function removeSites(): Promise<void> {
  for (const server of servers.splice(0)) await server.stop();
  await removeTempDirs();
}


/** A target as the command line would build it, validated by the real schema. */
export function makeTarget(
  site: Site,
  overrides: Record<string, unknown> = {},
  keys: { secrets?: Secret[]; signingTokens?: Secret[]; credentials?: Credentials } = {},
): LoadedTarget {
  const parsed = v.parse(TargetSchema, { name: "site", repo: site.dir, remote: site.url, refs: "refs/heads/main", strategy: "atomic", ...overrides });
  return { ...parsed, secrets: keys.secrets ?? [], signingTokens: keys.signingTokens ?? [], credentials: keys.credentials };
}

/** Log lines, parsed. */
export function captureLog() {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger((line) => lines.push(JSON.parse(line) as Record<string, unknown>)) };
}

/** A deploy that must fail: its error and the hooks that ran. */
export async function deployFailing(target: LoadedTarget, log = captureLog().log): Promise<{ error: Error & { code?: string }; hooks: HookRun[] }> {
  const hooks: HookRun[] = [];
  const error = await runDeploy(target, { ref: "refs/heads/main", commit: undefined }, { id: newDeployId(), log, hooks }).then(
    () => {
      throw new Error("expected the deploy to fail, but it succeeded");
    },
    (err: unknown) => err as Error & { code?: string },
  );
  return { error, hooks };
}

export async function deployOnce(target: LoadedTarget, commit?: string, log = captureLog().log): Promise<DeployOutcome> {
  return runDeploy(target, { ref: "refs/heads/main", commit }, { id: newDeployId(), log });
}

export async function commitAndPush(site: Site, files: Record<string, FileSpec>, message: string): Promise<string> {
  const commit = await commitFiles(site.work, files, message);
  await push(site.work);
  return commit;
}

/** Every entry under `dir` (directories too), with its kind and permission bits, never following a symlink. */
export async function listing(dir: string, prefix = "", found: string[] = []): Promise<string[]> {
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (path === ".git") continue;
    const st = await lstat(join(dir, path));
    const kind = st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : st.isFile() ? "file" : "other";
    found.push(`${path} ${kind} ${kind === "symlink" ? "" : (st.mode & 0o7777).toString(8)}`);
    if (st.isDirectory()) await listing(dir, path, found);
  }
  return found.sort();
}

/**
 * Asserts that `dir` is exactly what native git checks out for `commit`: the
 * files (expectTreeEquals), and no other directory or entry (a submodule is an
 * empty directory), with the same permissions.
 */
export async function expectFreshCheckout(dir: string, site: Site, commit: string): Promise<void> {
  await expectTreeEquals(dir, site.bare, commit);
  const fresh = join(await makeTempDir("fresh-checkout"), "tree");
  await git(site.work, "worktree", "add", "--quiet", "--detach", fresh, commit);
  expect(await listing(dir)).toEqual(await listing(fresh));
  await git(site.work, "worktree", "remove", "--force", fresh);
}
