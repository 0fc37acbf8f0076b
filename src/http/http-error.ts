/**
 * The one error type the HTTP layer answers with. `code` is stable for
 * clients and tests; `message` is safe to show (it never holds a secret).
 */
export class HttpError extends Error {
  override name = "HttpError";

  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 413 | 500 | 503,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
