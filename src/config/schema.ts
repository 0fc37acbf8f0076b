import * as v from "valibot";
import { isAbsolute } from "node:path";
import { splitListenAddress } from "./listen-address.ts";
import { RefPattern } from "./ref-pattern.ts";

/**
 * The only source of config types. Everything the daemon does is driven by a
 * value that passed through these schemas, so no side effect happens before
 * the whole configuration is known to be valid.
 */

const AbsolutePath = v.pipe(
  v.string(),
  v.nonEmpty("must not be empty"),
  v.check(isAbsolute, "must be an absolute path"),
);

const RemoteUrl = v.pipe(
  v.string(),
  v.url("must be a URL"),
  v.check((url) => /^https?:\/\//i.test(url), "must be an http:// or https:// URL (hooksd speaks git's smart HTTP)"),
  // A pipe runs every check even after v.url failed, so this one must not throw
  // on a non-URL (an origin that is a local path, say): v.url has reported it.
  v.check((url) => {
    const parsed = tryParseUrl(url);
    return !parsed?.username && !parsed?.password;
  }, "must not carry credentials: use a credentials file"),
);

function tryParseUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

export const TargetName = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "must be 1-64 letters, digits, '.', '_' or '-'"),
);

/** A path inside the deployed tree, e.g. ".hooksd" (where committed hooks live). */
const TreePath = v.pipe(
  v.string(),
  v.nonEmpty("must not be empty"),
  v.check((p) => !isAbsolute(p) && !p.split("/").some((part) => part === ".." || part === ".git"), "must be a path inside the tree (relative, no '..' or .git)"),
);

const HealthUrl = v.pipe(
  v.string(),
  v.url("must be a URL"),
  v.check((url) => /^https?:\/\//i.test(url), "must be an http:// or https:// URL"),
);

const Seconds = v.pipe(v.number(), v.integer(), v.minValue(1));

/**
 * Defaults of the fields added for atomic releases and hooks, applied where
 * they are used so that a target built without them (older config, tests)
 * stays a valid Target.
 */
export const DEFAULT_KEEP = 5;
export const DEFAULT_HOOK_TIMEOUT_SECONDS = 600;
export const DEFAULT_HEALTH_TIMEOUT_SECONDS = 30;

export const TargetSchema = v.object({
  name: TargetName,
  repo: AbsolutePath,
  remote: RemoteUrl,
  refs: RefPattern,
  /** in-place: move DIR's checkout; atomic: DIR/releases/<id> plus a DIR/current symlink switched by rename. */
  strategy: v.optional(v.picklist(["in-place", "atomic"]), "in-place"),
  /** Overwrite local modifications to tracked files instead of failing the deploy. */
  force: v.optional(v.boolean(), false),
  fetchTimeoutSeconds: v.optional(Seconds, 600),
  /** Releases kept by the atomic strategy (DEFAULT_KEEP); the current and previous ones are never pruned. */
  keep: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  /** Executable lifecycle hooks (post-checkout, pre-deploy, post-deploy, deploy-failed). */
  hooksDir: v.optional(AbsolutePath),
  /** Also run hooks committed in the deployed tree under this path. */
  repoHooks: v.optional(TreePath),
  hookTimeoutSeconds: v.optional(Seconds),
  /** Requested after an atomic switch; no 2xx in time switches back. */
  healthUrl: v.optional(HealthUrl),
  healthTimeoutSeconds: v.optional(Seconds),
});
export type Target = v.InferOutput<typeof TargetSchema>;

/** The one rule across fields of a target: a health check needs a release to switch back to. */
export function healthUrlProblem(t: Pick<Target, "healthUrl" | "strategy">): string | undefined {
  return t.healthUrl !== undefined && t.strategy !== "atomic" ? "needs the atomic strategy (in place there is no previous release to switch back to)" : undefined;
}

export const ListenSchema = v.object({
  host: v.pipe(v.string(), v.nonEmpty()),
  port: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65535)),
});
export type Listen = v.InferOutput<typeof ListenSchema>;

export const ServeSchema = v.object({
  listen: ListenSchema,
  stateDir: AbsolutePath,
  allowUnauthenticated: v.optional(v.boolean(), false),
  targets: v.pipe(v.array(TargetSchema), v.minLength(1, "needs at least one target")),
});
export type ServeSettings = v.InferOutput<typeof ServeSchema>;

const FileList = v.pipe(v.array(AbsolutePath), v.minLength(1, "must list at least one file"));

/**
 * One target in a config file. Keys are snake_case as is usual in TOML; the
 * value checks are TargetSchema's own, so the file and the flags cannot drift.
 */
export const TargetFileSchema = v.strictObject({
  name: TargetName,
  repo: AbsolutePath,
  remote: RemoteUrl,
  /** A branch name, or "*" for every branch. */
  branch: v.optional(v.pipe(v.string(), v.nonEmpty("must not be empty"))),
  /** A full ref or pattern instead of branch, e.g. "refs/tags/v*". */
  ref: v.optional(RefPattern),
  secret_files: v.optional(FileList),
  /** GitLab signing tokens (`webhook-signature`), checked instead of X-Gitlab-Token when a delivery is signed. */
  signing_token_files: v.optional(FileList),
  credentials_file: v.optional(AbsolutePath),
  strategy: TargetSchema.entries.strategy,
  force: TargetSchema.entries.force,
  fetch_timeout: TargetSchema.entries.fetchTimeoutSeconds,
  keep: TargetSchema.entries.keep,
  hooks_dir: TargetSchema.entries.hooksDir,
  repo_hooks: TargetSchema.entries.repoHooks,
  hook_timeout: TargetSchema.entries.hookTimeoutSeconds,
  health_url: TargetSchema.entries.healthUrl,
  health_timeout: TargetSchema.entries.healthTimeoutSeconds,
});

export const ConfigFileSchema = v.strictObject({
  listen: v.optional(
    v.pipe(
      v.string(),
      v.check((s) => splitListenAddress(s) !== undefined, "must be HOST:PORT, e.g. 127.0.0.1:8000"),
      v.transform((s) => splitListenAddress(s)!),
    ),
  ),
  state_dir: v.optional(AbsolutePath),
  allow_unauthenticated: v.optional(v.boolean(), false),
  /** Serve HTTPS: PEM certificate (chain included) and key, read again on SIGHUP. */
  tls_cert: v.optional(AbsolutePath),
  tls_key: v.optional(AbsolutePath),
  admin_token_file: v.optional(AbsolutePath),
  /** Seconds a running deploy may take to finish after SIGTERM. */
  shutdown_timeout: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)), 90),
  targets: v.pipe(v.array(TargetFileSchema), v.minLength(1, "needs at least one target")),
});
export type ConfigFile = v.InferOutput<typeof ConfigFileSchema>;

/** Turns valibot issues into one line per problem, each naming its key as in `targets[1].remote`. */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string[] {
  return issues.map((issue) => {
    const key = keyPath(issue);
    return key ? `${key}: ${describeMessage(issue)}` : issue.message;
  });
}

function keyPath(issue: v.BaseIssue<unknown>): string {
  let path = "";
  for (const item of issue.path ?? []) {
    const key = item.key;
    if (typeof key === "number") path += `[${key}]`;
    else if (typeof key === "string") path += path ? `.${key}` : key;
    else return path;
  }
  return path;
}

/** valibot's default texts say what was expected in its own terms; an unknown key deserves plainer words. */
function describeMessage(issue: v.BaseIssue<unknown>): string {
  if (issue.kind === "schema" && issue.type === "strict_object" && issue.expected === "never") return "unknown key";
  if (issue.kind === "schema" && issue.received === "undefined") return "is required";
  if (issue.kind === "schema") return `must be ${issue.expected}, not ${issue.received}`;
  return issue.message;
}
