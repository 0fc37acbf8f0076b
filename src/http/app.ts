import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { LoadedTarget } from "../config/loaded-target.ts";
import type { Deployer } from "../deploy/deployer.ts";
import type { Logger } from "../log.ts";
import { createAccessLog, type AccessLogVariables } from "./access-log.ts";
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
}

export function createApp({ target, deployer, log }: AppOptions) {
  const app = new Hono<{ Variables: AccessLogVariables }>();
  app.use(createAccessLog(log));

  app.post("/", bodyLimit({ maxSize: MAX_BODY_BYTES, onError: tooLarge }), createWebhookHandler({ target, deployer }));
  app.get("/healthz", (c) => c.json({ ok: true }));
  app.get("/status", async (c) => c.json({ targets: await deployer.status() }));

  for (const [path, allow] of [["/", "POST"], ["/healthz", "GET"], ["/status", "GET"]] as const) {
    app.all(path, (c) => {
      c.header("Allow", allow);
      throw new HttpError(405, "METHOD_NOT_ALLOWED", `${c.req.method} is not allowed here (use ${allow})`);
    });
  }
  app.notFound((c) => c.json({ error: "NOT_FOUND", message: "no such endpoint" }, 404));
  app.onError(createErrorHandler(log));
  return app;
}
