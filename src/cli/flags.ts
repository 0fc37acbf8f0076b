import { parseArgs } from "node:util";
import { ConfigError } from "../config/config-error.ts";

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
  help: { type: "boolean", short: "h" },
} as const;

export const serveFlags = {
  ...targetFlags,
  config: { type: "string" },
  listen: { type: "string" },
  "secret-file": { type: "string" },
  "allow-unauthenticated": { type: "boolean" },
} as const;

export const checkFlags = {
  config: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

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
  const message = err instanceof Error ? err.message : String(err);
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown flag ${unknown[1]}`;
  const missing = /Option '(--[\w-]+)[^']*' argument missing/.exec(message);
  if (missing) return `${missing[1]} needs a value`;
  const positional = /Unexpected argument '([^']+)'/.exec(message);
  if (positional) return `unexpected argument ${positional[1]} (every value goes with a flag, e.g. --repo DIR)`;
  return message;
}
