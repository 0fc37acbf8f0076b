import * as v from "valibot";
import { verifyHexSignature } from "./hmac.ts";
import { checkedRef, Oid, parsePayload } from "./parse-payload.ts";
import { ZERO_OID, type Delivery, type Provider, type PushEvent } from "./push-event.ts";

const RefState = v.nullish(
  v.object({
    type: v.string(),
    name: v.pipe(v.string(), v.maxLength(1000)),
    target: v.object({ hash: Oid }),
  }),
);

const PushPayload = v.object({
  push: v.object({
    changes: v.array(
      v.object({
        old: RefState,
        new: RefState,
        forced: v.optional(v.boolean()),
      }),
    ),
  }),
});

const REF_PREFIX: Record<string, string> = { branch: "refs/heads/", named_branch: "refs/heads/", tag: "refs/tags/" };

/**
 * Bitbucket Cloud (bitbucket.org): `X-Event-Key: repo:push`, `X-Hub-Signature:
 * sha256=<hex>`. One push may change several refs; each becomes an event and
 * the handler picks the one the target deploys. Payloads carry no clone URL.
 */
export const bitbucketCloud: Provider = {
  name: "bitbucket-cloud",

  // Data Center sends X-Event-Key too, but never Cloud's per-hook and per-request UUIDs.
  detect: (headers) => headers.has("x-event-key") && (headers.has("x-hook-uuid") || headers.has("x-request-uuid")),

  verify: (delivery, keys) => verifyHexSignature(delivery, keys.secrets, "X-Hub-Signature", "sha256="),

  parse({ headers, body }): Delivery {
    const event = headers.get("x-event-key") ?? "";
    if (event !== "repo:push") return { kind: "ignored", reason: `Bitbucket Cloud event '${event}' is not deployed` };

    const payload = parsePayload(PushPayload, { headers, body });
    const deliveryId = headers.get("x-request-uuid") ?? undefined;
    const events: PushEvent[] = [];
    for (const [i, change] of payload.push.changes.entries()) {
      const state = change.new ?? change.old;
      const prefix = state && REF_PREFIX[state.type];
      if (!state || !prefix) continue; // a Mercurial bookmark, or an empty change: nothing git can deploy
      const after = change.new?.target.hash ?? ZERO_OID;
      events.push({
        provider: "bitbucket-cloud",
        deliveryId,
        ref: checkedRef(prefix + state.name, `push.changes[${i}].name`),
        before: change.old?.target.hash ?? ZERO_OID,
        after,
        commit: after,
        deleted: change.new === null || change.new === undefined,
        forced: change.forced,
        cloneUrl: undefined,
      });
    }
    if (events.length === 0) return { kind: "ignored", reason: "the push changed no git branch or tag" };
    return { kind: "push", events };
  },
};
