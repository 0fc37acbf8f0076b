/**
 * What the daemon's thread and its deploy thread (deploy-thread.ts,
 * deploy-worker.ts) send each other. Messages are structured clones, which
 * keep plain data only: a Secret would arrive empty and an error would lose
 * its class, so both are encoded here explicitly.
 */
import type { LoadedTarget } from "../config/loaded-target.ts";
import { Secret } from "../config/secret.ts";
import { GitError } from "../git/git-error.ts";
import { PackError, RemoteHttpError } from "../git/pack-error.ts";
import { HookError } from "../hooks/hook-error.ts";
import type { HookRun } from "../hooks/run-hook.ts";
import type { LogFields } from "../log.ts";
import { ReleaseError } from "../publish/release-error.ts";
import { LockError } from "../publish/target-lock.ts";
import type { Phase } from "../state/history.ts";
import type { DeployOutcome, DeployRequest } from "./pipeline.ts";

/** A LoadedTarget whose secrets travel as their values: only between two threads of this process, never to a log. */
export type TargetMessage = Omit<LoadedTarget, "secrets" | "signingTokens" | "credentials"> & {
  secrets: string[];
  signingTokens: string[];
  credentials: { username: string; password: string } | undefined;
};

export type ToWorker = { type: "run"; job: number; target: TargetMessage; request: DeployRequest; id: string };

export type FromWorker =
  | { type: "log"; job: number; level: "info" | "warn" | "error"; msg: string; fields: LogFields | undefined }
  | { type: "phase"; job: number; phase: Phase }
  | { type: "fetched"; job: number; commit: string }
  | { type: "done"; job: number; outcome: DeployOutcome; hooks: HookRun[] }
  | { type: "failed"; job: number; error: ErrorMessage; hooks: HookRun[] };

export function encodeTarget(target: LoadedTarget): TargetMessage {
  const { credentials } = target;
  return {
    ...target,
    secrets: target.secrets.map((s) => s.reveal()),
    signingTokens: target.signingTokens.map((s) => s.reveal()),
    credentials: credentials && { username: credentials.username, password: credentials.password.reveal() },
  };
}

export function decodeTarget(message: TargetMessage): LoadedTarget {
  const { credentials } = message;
  return {
    ...message,
    secrets: message.secrets.map((s) => new Secret(s)),
    signingTokens: message.signingTokens.map((s) => new Secret(s)),
    credentials: credentials && { username: credentials.username, password: new Secret(credentials.password) },
  };
}

/** failure.ts classifies by class, so these arrive as instances of the class they were thrown as. */
const CLASSES = { GitError, PackError, RemoteHttpError, HookError, ReleaseError, LockError } as const;
type ClassName = keyof typeof CLASSES;

export interface ErrorMessage {
  className: ClassName | "Error";
  name: string;
  message: string;
  stack: string | undefined;
  /** Own fields: code, status, transfer, run, errno, syscall, path… whatever clones. */
  fields: Record<string, unknown>;
  cause: ErrorMessage | { value: unknown } | undefined;
}

export function encodeError(err: unknown): ErrorMessage {
  if (!(err instanceof Error)) return encodeError(new Error(String(err)));
  const className = (Object.keys(CLASSES) as ClassName[]).find((name) => err instanceof CLASSES[name]) ?? "Error";
  const fields: Record<string, unknown> = {};
  for (const key of [...Object.keys(err), "code", "errno", "syscall", "path"]) {
    const value = (err as unknown as Record<string, unknown>)[key];
    if (value !== undefined && key !== "cause" && cloneable(value)) fields[key] = value;
  }
  const cause = err.cause === undefined ? undefined : err.cause instanceof Error ? encodeError(err.cause) : { value: cloneable(err.cause) ? err.cause : String(err.cause) };
  return { className, name: err.name, message: err.message, stack: err.stack, fields, cause };
}

export function decodeError(message: ErrorMessage): Error {
  // The constructors want their original arguments; the prototype is what instanceof and failure.ts look at.
  const proto: object = message.className === "Error" ? Error.prototype : CLASSES[message.className].prototype;
  const err = Object.assign(Object.create(proto) as Error, message.fields);
  Object.defineProperty(err, "message", { value: message.message, writable: true, configurable: true });
  Object.defineProperty(err, "name", { value: message.name, writable: true, configurable: true });
  Object.defineProperty(err, "stack", { value: message.stack, writable: true, configurable: true });
  const { cause } = message;
  if (cause !== undefined) Object.defineProperty(err, "cause", { value: "className" in cause ? decodeError(cause) : cause.value, writable: true, configurable: true });
  return err;
}

function cloneable(value: unknown): boolean {
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}
