import { readdir, stat } from "node:fs/promises";
import { basename, isAbsolute, join, relative, resolve, sep } from "node:path";
import * as v from "valibot";
import type { TargetFlags } from "../cli/flags.ts";
import { isCheckout, readCurrentBranch, readOriginUrl } from "../git/repository.ts";
import { isReleaseLayout, releaseLayout } from "../publish/release-layout.ts";
import { ConfigError } from "./config-error.ts";
import type { LoadedTarget } from "./loaded-target.ts";
import { readCredentialsFile } from "./read-secrets.ts";
import { describeIssues, healthUrlProblem, TargetSchema } from "./schema.ts";
import type { VerificationKeys } from "../providers/push-event.ts";

/**
 * Builds the command line's target: the remote and branch come from the
 * checkout unless given, the whole result is validated, and only reads happen.
 */
export async function loadTargetFromFlags(flags: TargetFlags, keys: VerificationKeys | undefined): Promise<LoadedTarget> {
  if (!flags.repo) throw new ConfigError("--repo is required: the checkout to deploy into");
  const repo = resolve(flags.repo);
  const checkout = await isCheckout(repo);
  const releases = await isReleaseLayout(repo);
  // An existing layout decides the default strategy; a new directory gets in-place unless asked.
  const strategy = flags.strategy ?? (releases ? "atomic" : "in-place");
  const misfit = await strategyProblem(repo, strategy, "--strategy");
  if (misfit) throw new ConfigError(misfit);
  // Where the remote and branch are remembered: the checkout's .git, or the releases' object store.
  const gitdir = checkout ? join(repo, ".git") : releases ? releaseLayout(repo).gitdir : undefined;

  if (!gitdir) {
    if (!flags.remote) throw new ConfigError(`--repo: ${repo} is not a git checkout (pass --remote URL to create it with a first deploy)`);
    const problem = await checkNewRepoDir(repo, "--repo");
    if (problem) throw new ConfigError(problem);
  }

  const remote = flags.remote ?? (gitdir ? await readOriginUrl(repo, gitdir) : undefined);
  if (!remote) throw new ConfigError(`--repo: ${repo} has no 'origin' remote (pass --remote URL)`);

  const branch = flags.branch ?? (gitdir ? await readCurrentBranch(repo, gitdir) : undefined);
  if (!branch) {
    throw new ConfigError(gitdir ? `--repo: ${repo} has a detached HEAD (pass --branch NAME)` : "--branch is required when --repo is not a checkout yet");
  }

  const raw = {
    name: flags.name ?? (basename(repo) || "site"),
    repo,
    remote,
    refs: branch === "*" ? "refs/heads/*" : `refs/heads/${branch}`,
    strategy,
    force: flags.force ?? false,
    fetchTimeoutSeconds: number(flags["fetch-timeout"]),
    keep: number(flags.keep),
    hooksDir: flags["hooks-dir"] === undefined ? undefined : resolve(flags["hooks-dir"]),
    repoHooks: flags["repo-hooks"],
    hookTimeoutSeconds: number(flags["hook-timeout"]),
    healthUrl: flags["health-url"],
    healthTimeoutSeconds: number(flags["health-timeout"]),
  };
  // One problem per flag: later checks of a pipe only restate the first one.
  const parsed = v.safeParse(TargetSchema, raw, { abortPipeEarly: true });
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.issues).map(toFlagName).join("; "));

  const health = healthUrlProblem(parsed.output);
  if (health) throw new ConfigError(`--health-url: ${health}`);
  const hooks = await hooksDirProblem(parsed.output.hooksDir, "--hooks-dir");
  if (hooks) throw new ConfigError(hooks);

  const credentials = flags["credentials-file"] ? await readCredentialsFile(flags["credentials-file"], "--credentials-file") : undefined;
  return { ...parsed.output, secrets: [...(keys?.secrets ?? [])], signingTokens: [...(keys?.signingTokens ?? [])], credentials };
}

/** A missing or empty directory becomes the checkout (or the releases) on the first deploy; anything else is never deployed over. */
export async function checkNewRepoDir(repo: string, key: string): Promise<string | undefined> {
  if ((await isCheckout(repo)) || (await isReleaseLayout(repo))) return undefined;
  // Only a missing DIR counts as empty: a file (ENOTDIR) or an unreadable
  // directory must be refused here, not fail the first deploy.
  let entries: string[];
  try {
    entries = await readdir(repo);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    return code === "ENOTDIR" ? `${key}: ${repo} is not a directory` : `${key}: cannot read ${repo} (${code ?? "error"})`;
  }
  return entries.length > 0 ? `${key}: ${repo} is neither a git checkout nor empty; refusing to deploy over it` : undefined;
}

/** Why `strategy` cannot deploy into `repo` as it stands: a checkout is never turned into releases, nor the reverse. */
export async function strategyProblem(repo: string, strategy: string, key: string): Promise<string | undefined> {
  if (strategy === "atomic" && (await isCheckout(repo))) {
    return `${key}: atomic, but ${repo} is a git checkout deployed in place; give atomic releases a new or empty directory (or keep in-place)`;
  }
  if (strategy === "in-place" && (await isReleaseLayout(repo))) {
    return `${key}: in-place, but ${repo} holds atomic releases (releases/, current); use atomic`;
  }
  return undefined;
}

export async function hooksDirProblem(dir: string | undefined, key: string): Promise<string | undefined> {
  if (dir === undefined || (await stat(dir).catch(() => undefined))?.isDirectory()) return undefined;
  return `${key}: ${dir} is not a directory`;
}

/** A numeric flag's value; anything unparsable becomes NaN for the schema to reject by name. */
function number(value: string | undefined): number | undefined {
  return value === undefined ? undefined : value.trim() === "" ? Number.NaN : Number(value);
}

const FLAG_FOR_KEY: Record<string, string> = {
  name: "--name",
  repo: "--repo",
  remote: "--remote (or the checkout's origin)",
  refs: "--branch",
  strategy: "--strategy",
  fetchTimeoutSeconds: "--fetch-timeout",
  keep: "--keep",
  hooksDir: "--hooks-dir",
  repoHooks: "--repo-hooks",
  hookTimeoutSeconds: "--hook-timeout",
  healthUrl: "--health-url",
  healthTimeoutSeconds: "--health-timeout",
};

function toFlagName(problem: string): string {
  const [key, ...rest] = problem.split(": ");
  return key && FLAG_FOR_KEY[key] ? `${FLAG_FOR_KEY[key]}: ${rest.join(": ")}` : problem;
}

/** hooksd's own files never land inside the served tree unless asked for explicitly. */
export function checkStateDir(stateDir: string, target: Pick<LoadedTarget, "repo">, explicit: boolean): void {
  if (isInside(stateDir, target.repo) && !explicit) {
    throw new ConfigError(`the default state dir ${stateDir} is inside ${target.repo}; pass --state-dir to choose where hooksd keeps its files`);
  }
}

export function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  // A child named like "..cache" is still inside: only ".." itself or "../" leaves.
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}
