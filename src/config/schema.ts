import * as v from "valibot";
import { isAbsolute } from "node:path";
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

export const TargetSchema = v.object({
  name: TargetName,
  repo: AbsolutePath,
  remote: RemoteUrl,
  refs: RefPattern,
  strategy: v.optional(v.picklist(["in-place"]), "in-place"),
  /** Overwrite local modifications to tracked files instead of failing the deploy. */
  force: v.optional(v.boolean(), false),
  fetchTimeoutSeconds: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 600),
});
export type Target = v.InferOutput<typeof TargetSchema>;

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

/** Turns valibot issues into one line per problem, each naming its key. */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string[] {
  return issues.map((issue) => {
    const key = v.getDotPath(issue);
    return key ? `${key}: ${issue.message}` : issue.message;
  });
}
