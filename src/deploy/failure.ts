import { GitError } from "../git/git-error.ts";
import { PackError, RemoteHttpError } from "../git/pack-error.ts";
import { HookError } from "../hooks/hook-error.ts";
import { ReleaseError, type ReleaseErrorCode } from "../publish/release-error.ts";
import { LockError } from "../publish/target-lock.ts";

/**
 * Why a deploy failed, as a stable code for history and status, and whether
 * trying again can help. Only what the remote or the network did is worth a
 * retry: local changes, a refused login or a vanished commit stay the same
 * however often the deploy runs, and so does a full or read-only disk until
 * someone acts.
 */
export type FailureCode =
  | "REMOTE_UNREACHABLE"
  | "REMOTE_ERROR"
  | "REMOTE_AUTH"
  | "FETCH_TIMEOUT"
  | "TRANSFER_CUT"
  | "CORRUPT_PACK"
  | "FETCH_FAILED"
  | "DISK_FULL"
  | "READ_ONLY"
  | "PERMISSION_DENIED"
  | "DIR_MISSING"
  | "DEPLOY_FAILED"
  | HookError["code"]
  | LockError["code"]
  | ReleaseErrorCode
  | Exclude<GitError["code"], "FETCH_FAILED">;

export interface Failure {
  code: FailureCode;
  retryable: boolean;
}

const UNREACHABLE = new Set(["ECONNREFUSED", "ConnectionRefused", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ETIMEDOUT"]);
const CUT = new Set(["ECONNRESET", "EPIPE", "ConnectionClosed"]);
const LOCAL: Record<string, FailureCode> = {
  ENOSPC: "DISK_FULL",
  EDQUOT: "DISK_FULL",
  EROFS: "READ_ONLY",
  EACCES: "PERMISSION_DENIED",
  EPERM: "PERMISSION_DENIED",
  ENOENT: "DIR_MISSING",
};

export function classifyFailure(err: unknown): Failure {
  if (err instanceof GitError && err.code !== "FETCH_FAILED") return { code: err.code, retryable: false };
  if (err instanceof GitError) return classifyFetch(err.cause);
  // A failing hook or health check fails the same way again: they keep their own codes.
  if (err instanceof HookError || err instanceof ReleaseError || err instanceof LockError) return { code: err.code, retryable: false };
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  if (errno !== undefined && LOCAL[errno]) return { code: LOCAL[errno], retryable: false };
  return { code: "DEPLOY_FAILED", retryable: false };
}

/** A fetch failure, judged by what src/git's fetch or the runtime's fetch threw. */
function classifyFetch(cause: unknown): Failure {
  if (!(cause instanceof Error)) return { code: "FETCH_FAILED", retryable: false }; // e.g. the ref is gone
  const local = LOCAL[String((cause as NodeJS.ErrnoException).code)];
  if (local) return { code: local, retryable: false }; // writing what arrived failed here, not there
  if (cause.name === "TimeoutError" || cause.name === "AbortError") return { code: "FETCH_TIMEOUT", retryable: true };
  const code = String((cause as { code?: unknown }).code ?? "");
  if (UNREACHABLE.has(code)) return { code: "REMOTE_UNREACHABLE", retryable: true };
  if (CUT.has(code)) return { code: "TRANSFER_CUT", retryable: true };
  if (cause instanceof RemoteHttpError) {
    if (cause.status === 401 || cause.status === 403) return { code: "REMOTE_AUTH", retryable: false };
    if (cause.status >= 500 || cause.status === 408 || cause.status === 429) return { code: "REMOTE_ERROR", retryable: true };
  }
  if (cause instanceof PackError) return cause.transfer === "cut" ? { code: "TRANSFER_CUT", retryable: true } : { code: "CORRUPT_PACK", retryable: true };
  return { code: "FETCH_FAILED", retryable: false };
}
