/**
 * Every failure of the git layer, with a stable `code` for history, status and
 * tests. Messages name paths and commits, never credentials.
 */
export type GitErrorCode =
  | "FETCH_FAILED"
  | "COMMIT_NOT_FOUND"
  | "LOCAL_CHANGES"
  | "UNTRACKED_CONFLICT"
  | "UNSAFE_TREE"
  | "NOT_A_CHECKOUT";

export class GitError extends Error {
  override name = "GitError";

  constructor(
    readonly code: GitErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
