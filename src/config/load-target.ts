import { readdir } from "node:fs/promises";
import { basename, isAbsolute, relative, resolve, sep } from "node:path";
import * as v from "valibot";
import type { TargetFlags } from "../cli/flags.ts";
import { isCheckout, readCurrentBranch, readOriginUrl } from "../git/repository.ts";
import { ConfigError } from "./config-error.ts";
import type { LoadedTarget } from "./loaded-target.ts";
import { readCredentialsFile } from "./read-secrets.ts";
import { describeIssues, TargetSchema } from "./schema.ts";
import type { Secret } from "./secret.ts";

/**
 * Builds the command line's target: the remote and branch come from the
 * checkout unless given, the whole result is validated, and only reads happen.
 */
export async function loadTargetFromFlags(flags: TargetFlags, secret: Secret | undefined): Promise<LoadedTarget> {
  if (!flags.repo) throw new ConfigError("--repo is required: the checkout to deploy into");
  const repo = resolve(flags.repo);
  const checkout = await isCheckout(repo);

  if (!checkout) {
    if (!flags.remote) throw new ConfigError(`--repo: ${repo} is not a git checkout (pass --remote URL to create it with a first deploy)`);
    // Only a missing DIR counts as empty: a file (ENOTDIR) or an unreadable
    // directory must be refused here, not fail the first deploy.
    const entries = await readdir(repo).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return [];
      throw new ConfigError(err.code === "ENOTDIR" ? `--repo: ${repo} is not a directory` : `--repo: cannot read ${repo} (${err.code ?? "error"})`);
    });
    if (entries.length > 0) throw new ConfigError(`--repo: ${repo} is neither a git checkout nor empty; refusing to deploy over it`);
  }

  const remote = flags.remote ?? (await readOriginUrl(repo));
  if (!remote) throw new ConfigError(`--repo: ${repo} has no 'origin' remote (pass --remote URL)`);

  const branch = flags.branch ?? (checkout ? await readCurrentBranch(repo) : undefined);
  if (!branch) {
    throw new ConfigError(checkout ? `--repo: ${repo} has a detached HEAD (pass --branch NAME)` : "--branch is required when --repo is not a checkout yet");
  }

  const raw = {
    name: flags.name ?? (basename(repo) || "site"),
    repo,
    remote,
    refs: branch === "*" ? "refs/heads/*" : `refs/heads/${branch}`,
    force: flags.force ?? false,
    fetchTimeoutSeconds: flags["fetch-timeout"] === undefined ? undefined : Number(flags["fetch-timeout"]),
  };
  // One problem per flag: later checks of a pipe only restate the first one.
  const parsed = v.safeParse(TargetSchema, raw, { abortPipeEarly: true });
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.issues).map(toFlagName).join("; "));

  const credentials = flags["credentials-file"] ? await readCredentialsFile(flags["credentials-file"], "--credentials-file") : undefined;
  return { ...parsed.output, secret, credentials };
}

const FLAG_FOR_KEY: Record<string, string> = {
  name: "--name",
  repo: "--repo",
  remote: "--remote (or the checkout's origin)",
  refs: "--branch",
  fetchTimeoutSeconds: "--fetch-timeout",
};

function toFlagName(problem: string): string {
  const [key, ...rest] = problem.split(": ");
  return key && FLAG_FOR_KEY[key] ? `${FLAG_FOR_KEY[key]}: ${rest.join(": ")}` : problem;
}

/** hooksd's own files never land inside the served tree unless asked for explicitly. */
export function checkStateDir(stateDir: string, target: LoadedTarget, explicit: boolean): void {
  const rel = relative(target.repo, stateDir);
  // A child named like "..cache" is still inside: only ".." itself or "../" leaves.
  const inside = rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
  if (inside && !explicit) {
    throw new ConfigError(`the default state dir ${stateDir} is inside ${target.repo}; pass --state-dir to choose where hooksd keeps its files`);
  }
}
