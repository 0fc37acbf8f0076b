import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { createConfigRef, type ConfigRef } from "../config/config-ref.ts";
import type { LoadedTarget } from "../config/loaded-target.ts";
import type { Secret } from "../config/secret.ts";
import type { Deployer } from "../deploy/deployer.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics/hooksd-metrics.ts";
import type { History } from "../state/history.ts";
import { createMemoryDeliveryIds, type DeliveryIds } from "../state/delivery-ids.ts";
import { createAccessLog, type AccessLogVariables } from "./access-log.ts";
import { createAdminAccess, type ConnBindings } from "./admin-access.ts";
import { HttpError } from "./http-error.ts";
import { createErrorHandler } from "./on-error.ts";
import { BODY_TIMEOUT_MS, readBodyWithin, type BodyVariables } from "./read-body.ts";
import { createWebhookHandler } from "./webhook.ts";

/** GitLab's own limit for a webhook body. */
export const MAX_BODY_BYTES = 25 * 1024 * 1024;

export interface AppOptions {
  /** The current configuration, read through one swappable reference so that SIGHUP can replace it. */
  config?: ConfigRef | undefined;
  /** Shorthand for a fixed configuration of this one target. */
  target?: LoadedTarget | undefined;
  deployer: Deployer;
  log: Logger;
  /** Delivery ids already deployed; kept in memory unless given (serve passes the sqlite store). */
  deliveryIds?: DeliveryIds | undefined;
  /** Serves GET /deploys/:id. */
  history?: History | undefined;
  /** Counts deliveries and serves GET /metrics. */
  metrics?: Metrics | undefined;
  /** Opens the admin endpoints to non-loopback clients that present it. */
  adminToken?: Secret | undefined;
  /** How long a client may take to send a body (BODY_TIMEOUT_MS unless given). */
  bodyTimeoutMs?: number | undefined;
}

export function createApp({ config, target, deployer, log, deliveryIds, history, metrics, adminToken, bodyTimeoutMs }: AppOptions) {
  const current = config ?? createConfigRef({ targets: target ? [target] : [] });
  const webhook = createWebhookHandler({ config: current, deployer, deliveryIds: deliveryIds ?? createMemoryDeliveryIds() });
  const app = new Hono<{ Variables: AccessLogVariables & BodyVariables; Bindings: ConnBindings }>();
  app.use(createAccessLog(log));
  const admin = createAdminAccess(adminToken);

  const limit = readBodyWithin({ maxBytes: MAX_BODY_BYTES, timeoutMs: bodyTimeoutMs ?? BODY_TIMEOUT_MS });
  const countDelivery = createMiddleware<{ Variables: AccessLogVariables }>(async (c, next) => {
    await next();
    metrics?.delivery(String(c.get("logFields").provider ?? "unknown"), c.res.status);
  });
  app.post("/", countDelivery, limit, webhook);
  app.post("/hooks/:name", countDelivery, limit, webhook);
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

  const routes = [["/", "POST"], ["/hooks/:name", "POST"], ["/healthz", "GET"], ["/status", "GET"], ["/deploys/:id", "GET"], ["/metrics", "GET"]] as const;
  for (const [path, allow] of routes) {
    app.all(path, (c) => {
      c.header("Allow", allow);
      throw new HttpError(405, "METHOD_NOT_ALLOWED", `${c.req.method} is not allowed here (use ${allow})`);
    });
  }
  app.notFound((c) => c.json({ error: "NOT_FOUND", message: "no such endpoint" }, 404));
  app.onError(createErrorHandler(log));
  return app;
}
