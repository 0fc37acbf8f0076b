import type { Context } from "hono";
import { matchRefPattern } from "../config/ref-pattern.ts";
import type { LoadedTarget } from "../config/loaded-target.ts";
import type { Deployer } from "../deploy/deployer.ts";
import { detectProvider } from "../providers/index.ts";
import type { AccessLogVariables } from "./access-log.ts";
import { HttpError } from "./http-error.ts";

/**
 * Verify, parse, decide, queue, answer: no git work happens before the answer.
 * The signature is checked over the raw bytes before anything reads them.
 */
export function createWebhookHandler(options: { target: LoadedTarget; deployer: Deployer }) {
  const { target, deployer } = options;
  return async function webhook(c: Context<{ Variables: AccessLogVariables }>): Promise<Response> {
    const delivery = { headers: c.req.raw.headers, body: new Uint8Array(await c.req.arrayBuffer()) };
    const provider = detectProvider(delivery.headers);
    const fields = c.get("logFields");
    fields.provider = provider.name;
    // A stopping daemon takes no new work; forges retry a 503 later (then on the restarted daemon).
    if (!deployer.accepting) {
      c.header("Retry-After", "30");
      throw new HttpError(503, "SHUTTING_DOWN", "hooksd is shutting down; deliver again shortly");
    }
    if (target.secret) provider.verify(delivery, target.secret.reveal());

    const parsed = provider.parse(delivery);
    if (parsed.kind === "ignored") return ignore(c, parsed.reason);
    const event = parsed.event;
    fields.deliveryId = event.deliveryId;
    fields.ref = event.ref;

    if (event.deleted) return ignore(c, `${event.ref} was deleted; a deletion never removes the site`);
    if (!matchRefPattern(target.refs, event.ref)) {
      return ignore(c, `${event.ref} is not deployed by target ${target.name} (it deploys ${target.refs})`);
    }

    const record = deployer.submit(target.name, {
      ref: event.ref,
      commit: event.commit,
      provider: event.provider,
      deliveryId: event.deliveryId,
    });
    fields.deploy = record.id;
    return c.json({ deploy: record.id, target: target.name, ref: event.ref, commit: event.commit }, 202);
  };
}

function ignore(c: Context<{ Variables: AccessLogVariables }>, reason: string): Response {
  c.get("logFields").ignored = reason;
  return c.json({ ignored: reason }, 200);
}
