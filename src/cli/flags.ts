import { parseArgs } from "node:util";
import { ConfigError } from "../config/config-error.ts";
import { errorMessage } from "../util/error-message.ts";

/** Flags shared by every command that names a target on the command line. */
export const targetFlags = {
  repo: { type: "string" },
  remote: { type: "string" },
  branch: { type: "string" },
  name: { type: "string" },
  "state-dir": { type: "string" },
  "credentials-file": { type: "string" },
  "fetch-timeout": { type: "string" },
  force: { type: "boolean" },
  strategy: { type: "string" },
  keep: { type: "string" },
  "hooks-dir": { type: "string" },
  "repo-hooks": { type: "string" },
  "hook-timeout": { type: "string" },
  "health-url": { type: "string" },
  "health-timeout": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export const serveFlags = {
  ...targetFlags,
  config: { type: "string" },
  listen: { type: "string" },
  "secret-file": { type: "string" },
  "allow-unauthenticated": { type: "boolean" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "admin-token-file": { type: "string" },
  "shutdown-timeout": { type: "string" },
} as const;

export const checkFlags = {
  config: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Flags of the commands that only read the state dir. */
const readerFlags = {
  "state-dir": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export const historyFlags = { ...readerFlags, target: { type: "string" }, limit: { type: "string" } } as const;

export const statusFlags = { ...readerFlags, repo: { type: "string" }, name: { type: "string" } } as const;

/** install-unit takes the serve flags (they go into ExecStart=) plus where to write. */
export const installUnitFlags = {
  ...serveFlags,
  dest: { type: "string" },
  bin: { type: "string" },
} as const;

export type TargetFlags = ParsedFlags<typeof targetFlags>;
export type ServeFlags = ParsedFlags<typeof serveFlags>;

type FlagSpec = Record<string, { type: "string" | "boolean"; short?: string }>;
type ParsedFlags<S extends FlagSpec> = {
  [K in keyof S]?: S[K]["type"] extends "string" ? string : boolean;
};

/** A whole number of at least `min`, for flags like --limit and --shutdown-timeout. */
export function parseCount(value: string | undefined, flag: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) throw new ConfigError(`${flag}: '${value}' is not a whole number of at least ${min}`);
  return n;
}

/** Parses argv strictly; every problem is a ConfigError naming the flag. */
export function parseFlags<S extends FlagSpec>(spec: S, argv: string[]): ParsedFlags<S> {
  try {
    const { values } = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false });
    return values as ParsedFlags<S>;
  } catch (err) {
    throw new ConfigError(describeParseError(err));
  }
}

function describeParseError(err: unknown): string {
  const message = errorMessage(err);
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown flag ${unknown[1]}`;
  // "ambiguous": the value looks like another flag (`--limit --json`).
  const missing = /Option '(--[\w-]+)[^']*' argument (?:missing|is ambiguous)/.exec(message);
  if (missing) return `${missing[1]} needs a value`;
  const positional = /Unexpected argument '([^']+)'/.exec(message);
  if (positional) return `unexpected argument ${positional[1]} (every value goes with a flag, e.g. --repo DIR)`;
  return message;
}
