import type { MiddlewareHandler } from "hono";
import { HttpError } from "./http-error.ts";

/**
 * How long a client may take to send its whole body. Forges post from data
 * centres in well under a second; a client still trickling bytes after this
 * is holding a connection open, not delivering a webhook.
 */
export const BODY_TIMEOUT_MS = 30_000;

/**
 * Reads the request body before the handler runs, and refuses it as soon as
 * it is known to be too large (413, from Content-Length before a byte is read,
 * or once the streamed bytes pass the limit) or too slow (408, once the whole
 * body has taken longer than `timeoutMs`). Nothing more than `maxBytes` is
 * ever held. The handler then reads the buffered body as usual.
 */
export function readBodyWithin(options: { maxBytes: number; timeoutMs: number }): MiddlewareHandler {
  const { maxBytes, timeoutMs } = options;
  return async function readBody(c, next) {
    const stream = c.req.raw.body;
    if (!stream) return next();
    const declared = Number(c.req.header("content-length") ?? Number.NaN);
    if (declared > maxBytes) throw tooLarge(maxBytes);

    const reader = stream.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    let timer: Timer | undefined;
    const deadline = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), timeoutMs)));
    try {
      for (;;) {
        const next = await Promise.race([reader.read(), deadline]);
        if (next === "late") throw new HttpError(408, "BODY_TIMEOUT", `the body did not arrive within ${timeoutMs / 1000} s`);
        if (next.done) break;
        size += next.value.byteLength;
        if (size > maxBytes) throw tooLarge(maxBytes);
        chunks.push(next.value);
      }
    } catch (err) {
      // Stop reading what is left; the answer goes out and the connection can close.
      void reader.cancel().catch(() => {});
      throw err;
    } finally {
      clearTimeout(timer);
    }
    c.req.raw = new Request(c.req.raw, { body: Buffer.concat(chunks, size) });
    return next();
  };
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, "TOO_LARGE", `body larger than ${Math.round(maxBytes / 1024 / 1024)} MB`);
}
