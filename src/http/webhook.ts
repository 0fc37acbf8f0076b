import type { Context } from "hono";
import type { ConfigRef } from "../config/config-ref.ts";
import type { LoadedTarget } from "../config/loaded-target.ts";
import { matchRefPattern } from "../config/ref-pattern.ts";
import type { Deployer } from "../deploy/deployer.ts";
import { detectProvider } from "../providers/index.ts";
import type { PushEvent } from "../providers/push-event.ts";
import type { DeliveryIds } from "../state/delivery-ids.ts";
import type { AccessLogVariables } from "./access-log.ts";
import { HttpError } from "./http-error.ts";
import type { BodyVariables } from "./read-body.ts";

type WebhookContext = Context<{ Variables: AccessLogVariables & BodyVariables }>;

/**
 * Route, verify, parse, decide, drop redeliveries, queue, answer: no git work
 * happens before the answer. The signature is checked over the raw bytes
 * before anything reads them.
 */
export function createWebhookHandler(options: { config: ConfigRef; deployer: Deployer; deliveryIds: DeliveryIds }) {
  const { config, deployer, deliveryIds } = options;
  return function webhook(c: WebhookContext): Response {
    const fields = c.get("logFields");
    const delivery = { headers: c.req.raw.headers, body: c.get("body") };
    // One snapshot per request: from here to submit everything is synchronous
    // (the body was read before), so a reload cannot slip in between.
    const target = pickTarget(config.current().targets, c.req.param("name"));
    fields.target = target.name;
    const provider = detectProvider(delivery.headers);
    fields.provider = provider.name;
    // A stopping daemon takes no new work; forges retry a 503 later (then on the restarted daemon).
    if (!deployer.accepting) {
      c.header("Retry-After", "30");
      throw new HttpError(503, "SHUTTING_DOWN", "hooksd is shutting down; deliver again shortly");
    }
    // No keys only when the config allows unauthenticated deliveries (checked at load).
    if (target.secrets.length > 0 || target.signingTokens.length > 0) provider.verify(delivery, target);

    const parsed = provider.parse(delivery);
    if (parsed.kind === "ignored") return ignore(c, parsed.reason);
    const choice = chooseEvent(target, parsed.events);
    if (choice.kind === "ignored") return ignore(c, choice.reason);
    const event = choice.event;
    fields.deliveryId = event.deliveryId;
    fields.ref = event.ref;

    // Recorded only now: the delivery is verified and about to deploy.
    if (event.deliveryId !== undefined && !deliveryIds.claim(target.name, event.deliveryId)) {
      fields.duplicate = true;
      return c.json({ duplicate: event.deliveryId }, 200);
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

/** `POST /hooks/<name>` names its target; `POST /` serves the only one. */
function pickTarget(targets: readonly LoadedTarget[], name: string | undefined): LoadedTarget {
  if (name === undefined) {
    if (targets.length === 1) return targets[0]!;
    throw new HttpError(404, "UNKNOWN_TARGET", `this server has ${targets.length} targets: post to /hooks/<name>`);
  }
  const target = targets.find((t) => t.name === name);
  if (!target) throw new HttpError(404, "UNKNOWN_TARGET", "no target by that name");
  return target;
}

type Choice = { kind: "deploy"; event: PushEvent } | { kind: "ignored"; reason: string };

/**
 * A delivery may change several refs (Bitbucket). The target deploys the last
 * live ref it follows; a deletion never removes the site.
 */
export function chooseEvent(target: LoadedTarget, events: readonly PushEvent[]): Choice {
  const matching = events.filter((e) => matchRefPattern(target.refs, e.ref));
  const live = matching.filter((e) => !e.deleted);
  if (live.length > 0) return { kind: "deploy", event: live.at(-1)! };
  const deleted = matching.find((e) => e.deleted) ?? (events.every((e) => e.deleted) ? events[0] : undefined);
  if (deleted) return { kind: "ignored", reason: `${deleted.ref} was deleted; a deletion never removes the site` };
  const refs = events.map((e) => e.ref).join(", ");
  return { kind: "ignored", reason: `${refs} ${events.length === 1 ? "is" : "are"} not deployed by target ${target.name} (it deploys ${target.refs})` };
}

function ignore(c: WebhookContext, reason: string): Response {
  c.get("logFields").ignored = reason;
  return c.json({ ignored: reason }, 200);
}
