/** Failures of the atomic strategy and of rollback, with a stable `code`. */
export type ReleaseErrorCode = "HEALTH_CHECK_FAILED" | "NO_SUCH_RELEASE" | "NOTHING_TO_ROLL_BACK_TO";

export class ReleaseError extends Error {
  override name = "ReleaseError";

  constructor(
    readonly code: ReleaseErrorCode,
    message: string,
  ) {
    super(message);
  }
}
