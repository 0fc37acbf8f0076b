import { GitError } from "../git/git-error.ts";
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
const CUT = new Set(["ECONNRESET", "EPIPE", "ConnectionClosed", "ParseError", "EmptyServerResponseError"]);
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

/** A fetch failure, judged by what isomorphic-git or the runtime's fetch threw. */
function classifyFetch(cause: unknown): Failure {
  if (!(cause instanceof Error)) return { code: "FETCH_FAILED", retryable: false }; // e.g. the ref is gone
  const local = LOCAL[String((cause as NodeJS.ErrnoException).code)];
  if (local) return { code: local, retryable: false }; // writing what arrived failed here, not there
  if (cause.name === "TimeoutError" || cause.name === "AbortError") return { code: "FETCH_TIMEOUT", retryable: true };
  const code = String((cause as { code?: unknown }).code ?? "");
  if (UNREACHABLE.has(code)) return { code: "REMOTE_UNREACHABLE", retryable: true };
  if (CUT.has(code)) return { code: "TRANSFER_CUT", retryable: true };
  const status = (cause as { data?: { statusCode?: number } }).data?.statusCode;
  if (status === 401 || status === 403) return { code: "REMOTE_AUTH", retryable: false };
  if (status !== undefined && (status >= 500 || status === 408 || status === 429)) return { code: "REMOTE_ERROR", retryable: true };
  // isomorphic-git's InternalError comes from inflating or indexing the pack: its bytes were damaged.
  if (code === "InternalError") return { code: "CORRUPT_PACK", retryable: true };
  return { code: "FETCH_FAILED", retryable: false };
}
