import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "../log.ts";
import { HttpError } from "./http-error.ts";

/** The single place where errors become answers: `{error: code, message}` with the error's status. */
export function createErrorHandler(log: Logger) {
  return function onError(err: Error, c: Context): Response {
    if (err instanceof HttpError) return c.json({ error: err.code, message: err.message }, err.status);
    if (err instanceof HTTPException && err.status === 413) return tooLarge(c);
    log.error("request failed", { method: c.req.method, path: c.req.path, error: err.message });
    return c.json({ error: "INTERNAL", message: "internal error" }, 500);
  };
}

export function tooLarge(c: Context): Response {
  return c.json({ error: "TOO_LARGE", message: "body larger than 25 MB" }, 413);
}
