import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { LoadedTarget } from "../config/loaded-target.ts";
import type { Secret } from "../config/secret.ts";
import type { Deployer } from "../deploy/deployer.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics/hooksd-metrics.ts";
import type { History } from "../state/history.ts";
import { createAccessLog, type AccessLogVariables } from "./access-log.ts";
import { createAdminAccess, type ConnBindings } from "./admin-access.ts";
import { HttpError } from "./http-error.ts";
import { createErrorHandler, tooLarge } from "./on-error.ts";
import { createWebhookHandler } from "./webhook.ts";

/** GitLab's own limit for a webhook body. */
export const MAX_BODY_BYTES = 25 * 1024 * 1024;

export interface AppOptions {
  /** The target `POST /` deploys. */
  target: LoadedTarget;
  deployer: Deployer;
  log: Logger;
  /** Serves GET /deploys/:id. */
  history?: History;
  /** Counts deliveries and serves GET /metrics. */
  metrics?: Metrics;
  /** Opens the admin endpoints to non-loopback clients that present it. */
  adminToken?: Secret | undefined;
}

export function createApp({ target, deployer, log, history, metrics, adminToken }: AppOptions) {
  const app = new Hono<{ Variables: AccessLogVariables; Bindings: ConnBindings }>();
  app.use(createAccessLog(log));
  const admin = createAdminAccess(adminToken);

  app.post(
    "/",
    async (c, next) => {
      await next();
      metrics?.delivery(String(c.get("logFields").provider ?? "unknown"), c.res.status);
    },
    bodyLimit({ maxSize: MAX_BODY_BYTES, onError: tooLarge }),
    createWebhookHandler({ target, deployer }),
  );
  app.get("/healthz", (c) => c.json({ ok: true }));
  app.get("/status", admin, async (c) => c.json({ targets: await deployer.status() }));
  app.get("/deploys/:id", admin, (c) => {
    const record = history?.get(c.req.param("id"));
    if (!record) throw new HttpError(404, "NO_SUCH_DEPLOY", `no deploy ${c.req.param("id")} in the history`);
    return c.json(record);
  });
  app.get("/metrics", admin, (c) => {
    if (!metrics) throw new HttpError(404, "NOT_FOUND", "no such endpoint");
    return c.body(metrics.render(), 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
  });

  for (const [path, allow] of [["/", "POST"], ["/healthz", "GET"], ["/status", "GET"], ["/deploys/:id", "GET"], ["/metrics", "GET"]] as const) {
    app.all(path, (c) => {
      c.header("Allow", allow);
      throw new HttpError(405, "METHOD_NOT_ALLOWED", `${c.req.method} is not allowed here (use ${allow})`);
    });
  }
  app.notFound((c) => c.json({ error: "NOT_FOUND", message: "no such endpoint" }, 404));
  app.onError(createErrorHandler(log));
  return app;
}
