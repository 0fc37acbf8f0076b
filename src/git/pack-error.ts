/**
 * A pack, index or object that is not what git's formats say it must be.
 * `transfer` tells a response that stopped early ("cut": trying again may
 * help) from bytes that arrived damaged ("corrupt").
 */
export class PackError extends Error {
  override name = "PackError";

  constructor(
    message: string,
    options?: { cause?: unknown; transfer?: "cut" | "corrupt" },
  ) {
    super(message, options);
    this.transfer = options?.transfer ?? "corrupt";
  }

  readonly transfer: "cut" | "corrupt";
}

/** The git server answered with an HTTP error status. */
export class RemoteHttpError extends Error {
  override name = "RemoteHttpError";

  constructor(
    readonly status: number,
    statusText: string,
  ) {
    super(`HTTP ${status} ${statusText}`.trim());
  }
}
