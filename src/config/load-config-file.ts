import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import * as v from "valibot";
import { ConfigError } from "./config-error.ts";
import { checkNewRepoDir, hooksDirProblem, isInside, strategyProblem } from "./load-target.ts";
import type { LoadedTarget } from "./loaded-target.ts";
import { readCredentialsFile, readSecretFile } from "./read-secrets.ts";
import { RefPattern } from "./ref-pattern.ts";
import { ConfigFileSchema, describeIssues, healthUrlProblem, type ConfigFile, type Listen } from "./schema.ts";
import { defaultStateDir } from "./state-dir.ts";
import { errorMessage } from "../util/error-message.ts";

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** How the user named the pair, for messages: "--tls-cert/--tls-key" or "tls_cert/tls_key". */
  names: string;
}

/** What `serve` runs with; a reload replaces all of it at once. */
export interface ServeConfig {
  listen: Listen;
  stateDir: string;
  targets: LoadedTarget[];
  /** Serve HTTPS with these files (read again on SIGHUP). */
  tls?: TlsFiles | undefined;
  /** Opens the admin endpoints to non-loopback clients; else the admin-token credential, else loopback only. */
  adminTokenFile?: string | undefined;
  /** On SIGTERM, how long a running deploy may take to finish. */
  shutdownTimeoutSeconds: number;
}

export const DEFAULT_LISTEN: Listen = { host: "127.0.0.1", port: 8000 };
export const DEFAULT_SHUTDOWN_SECONDS = 90;

/**
 * Reads, validates and resolves a config file: TOML, or JSON for a `.json`
 * file. Every problem found is reported at once, each naming its key; secret
 * files are read only once the rest is known to be valid, and their contents
 * go into Secret objects, never into anything that is printed.
 */
export async function loadConfigFile(path: string): Promise<ServeConfig> {
  const file = await readConfigFile(path);

  const stateDir = file.state_dir ?? defaultStateDir();
  const problems = await checkTargets(file, stateDir);
  if ((file.tls_cert === undefined) !== (file.tls_key === undefined)) problems.push(`${file.tls_cert ? "tls_key" : "tls_cert"}: is required with ${file.tls_cert ? "tls_cert" : "tls_key"}`);
  if (problems.length) throw new ConfigError(problems);

  const targets: LoadedTarget[] = [];
  for (const [i, t] of file.targets.entries()) {
    const key = `targets[${i}]`;
    const secrets = await collect(problems, (t.secret_files ?? []).map((f, j) => () => readSecretFile(f, `${key}.secret_files[${j}]`)));
    const signingTokens = await collect(problems, (t.signing_token_files ?? []).map((f, j) => () => readSecretFile(f, `${key}.signing_token_files[${j}]`)));
    const [credentials] = await collect(problems, t.credentials_file ? [() => readCredentialsFile(t.credentials_file!, `${key}.credentials_file`)] : []);
    targets.push({
      name: t.name,
      repo: t.repo,
      remote: t.remote,
      refs: refsOf(t)!,
      strategy: t.strategy,
      force: t.force,
      fetchTimeoutSeconds: t.fetch_timeout,
      keep: t.keep,
      hooksDir: t.hooks_dir,
      repoHooks: t.repo_hooks,
      hookTimeoutSeconds: t.hook_timeout,
      healthUrl: t.health_url,
      healthTimeoutSeconds: t.health_timeout,
      secrets,
      signingTokens,
      credentials,
    });
  }
  if (problems.length) throw new ConfigError(problems);
  return {
    listen: file.listen ?? DEFAULT_LISTEN,
    stateDir,
    targets,
    tls: file.tls_cert && file.tls_key ? { certFile: file.tls_cert, keyFile: file.tls_key, names: "tls_cert/tls_key" } : undefined,
    adminTokenFile: file.admin_token_file,
    shutdownTimeoutSeconds: file.shutdown_timeout,
  };
}

/** The file parsed and checked against the schema, without reading any secret file (install-unit needs its paths only). */
export async function readConfigFile(path: string): Promise<ConfigFile> {
  const parsed = v.safeParse(ConfigFileSchema, await parseFile(path));
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.issues));
  return parsed.output;
}

async function parseFile(path: string): Promise<unknown> {
  const ext = extname(path).toLowerCase();
  if (ext !== ".toml" && ext !== ".json") throw new ConfigError(`--config: ${path} must be a .toml or .json file`);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ConfigError(`--config: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  try {
    return ext === ".json" ? JSON.parse(text) : Bun.TOML.parse(text);
  } catch (err) {
    const detail = errorMessage(err);
    throw new ConfigError(`--config: ${path} is not valid ${ext === ".json" ? "JSON" : "TOML"}: ${detail}`);
  }
}

/** The checks no single key can make: names and checkouts unique, one way to name the refs, a way to authenticate. */
async function checkTargets(file: ConfigFile, stateDir: string): Promise<string[]> {
  const problems: string[] = [];
  const names = new Map<string, number>();
  const repos = new Map<string, number>();
  for (const [i, t] of file.targets.entries()) {
    const key = `targets[${i}]`;
    const sameName = names.get(t.name);
    if (sameName !== undefined) problems.push(`${key}.name: '${t.name}' is already the name of targets[${sameName}]`);
    names.set(t.name, i);
    // Two targets deploying into one checkout would race each other.
    const sameRepo = [...repos].find(([repo]) => isInside(repo, t.repo) || isInside(t.repo, repo));
    if (sameRepo) problems.push(`${key}.repo: ${t.repo} overlaps targets[${sameRepo[1]}].repo`);
    repos.set(t.repo, i);

    if (t.branch !== undefined && t.ref !== undefined) problems.push(`${key}: give branch or ref, not both`);
    else if (t.branch === undefined && t.ref === undefined) problems.push(`${key}.branch: is required (or ref, e.g. "refs/tags/v*")`);
    else if (t.branch !== undefined && !v.is(RefPattern, refsOf(t))) problems.push(`${key}.branch: '${t.branch}' is not a valid branch name`);

    if (!t.secret_files && !t.signing_token_files && !file.allow_unauthenticated) {
      problems.push(`${key}.secret_files: is required (or set allow_unauthenticated = true to accept unsigned deliveries)`);
    }
    if (file.state_dir === undefined && isInside(stateDir, t.repo)) {
      problems.push(`state_dir: the default ${stateDir} is inside ${key}.repo (${t.repo}); set state_dir`);
    }
    const repoProblem = await checkNewRepoDir(t.repo, `${key}.repo`);
    if (repoProblem) problems.push(repoProblem);
    const health = healthUrlProblem({ healthUrl: t.health_url, strategy: t.strategy });
    for (const problem of [
      await strategyProblem(t.repo, t.strategy, `${key}.strategy`),
      health && `${key}.health_url: ${health}`,
      await hooksDirProblem(t.hooks_dir, `${key}.hooks_dir`),
    ]) {
      if (problem) problems.push(problem);
    }
  }
  return problems;
}

function refsOf(t: { branch?: string | undefined; ref?: string | undefined }): string | undefined {
  if (t.ref !== undefined) return t.ref;
  if (t.branch === undefined) return undefined;
  return t.branch === "*" ? "refs/heads/*" : `refs/heads/${t.branch}`;
}

/** Runs every read, keeping the values and adding each failure's message to `problems`. */
async function collect<T>(problems: string[], reads: (() => Promise<T>)[]): Promise<T[]> {
  const values: T[] = [];
  for (const read of reads) {
    try {
      values.push(await read());
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
    }
  }
  return values;
}

