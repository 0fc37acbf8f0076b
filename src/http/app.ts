import { Hono } from "hono";
import { createConfigRef, type ConfigRef } from "../config/config-ref.ts";
import type { LoadedTarget } from "../config/loaded-target.ts";
import type { Deployer } from "../deploy/deployer.ts";
import type { Logger } from "../log.ts";
import { createMemoryDeliveryIds, type DeliveryIds } from "../state/delivery-ids.ts";
import { createAccessLog, type AccessLogVariables } from "./access-log.ts";
import { HttpError } from "./http-error.ts";
import { createErrorHandler } from "./on-error.ts";
import { BODY_TIMEOUT_MS, readBodyWithin } from "./read-body.ts";
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
  /** How long a client may take to send a body (BODY_TIMEOUT_MS unless given). */
  bodyTimeoutMs?: number | undefined;
}

export function createApp({ config, target, deployer, log, deliveryIds, bodyTimeoutMs }: AppOptions) {
  const current = config ?? createConfigRef({ targets: target ? [target] : [] });
  const webhook = createWebhookHandler({ config: current, deployer, deliveryIds: deliveryIds ?? createMemoryDeliveryIds() });
  const app = new Hono<{ Variables: AccessLogVariables }>();
  app.use(createAccessLog(log));

  const limit = readBodyWithin({ maxBytes: MAX_BODY_BYTES, timeoutMs: bodyTimeoutMs ?? BODY_TIMEOUT_MS });
  app.post("/", limit, webhook);
  app.post("/hooks/:name", limit, webhook);
  app.get("/healthz", (c) => c.json({ ok: true }));
  app.get("/status", async (c) => c.json({ targets: await deployer.status() }));

  for (const [path, allow] of [["/", "POST"], ["/hooks/:name", "POST"], ["/healthz", "GET"], ["/status", "GET"]] as const) {
    app.all(path, (c) => {
      c.header("Allow", allow);
      throw new HttpError(405, "METHOD_NOT_ALLOWED", `${c.req.method} is not allowed here (use ${allow})`);
    });
  }
  app.notFound((c) => c.json({ error: "NOT_FOUND", message: "no such endpoint" }, 404));
  app.onError(createErrorHandler(log));
  return app;
}
