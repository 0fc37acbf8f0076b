import type { MiddlewareHandler } from "hono";
import type { Logger } from "../log.ts";

export type AccessLogVariables = { logFields: Record<string, unknown> };

/**
 * Logs every request with its answer. Handlers add what they learned (provider,
 * delivery id, deploy id) to `logFields`; headers and bodies are never logged.
 */
export function createAccessLog(log: Logger): MiddlewareHandler<{ Variables: AccessLogVariables }> {
  return async function accessLog(c, next) {
    const start = performance.now();
    c.set("logFields", {});
    await next();
    log.info("request", {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((performance.now() - start) * 100) / 100,
      ...c.get("logFields"),
    });
  };
}
