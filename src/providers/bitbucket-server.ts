import * as v from "valibot";
import { verifyHexSignature } from "./hmac.ts";
import { checkedRef, Oid, parsePayload, RefName } from "./parse-payload.ts";
import { ZERO_OID, type Delivery, type Provider } from "./push-event.ts";

const RefsChangedPayload = v.object({
  changes: v.array(
    v.object({
      refId: RefName,
      fromHash: Oid,
      toHash: Oid,
      type: v.string(),
    }),
  ),
  repository: v.optional(
    v.object({
      links: v.optional(v.object({ clone: v.optional(v.array(v.object({ href: v.string(), name: v.string() }))) })),
    }),
  ),
});

/**
 * Bitbucket Data Center (formerly Server): `X-Event-Key: repo:refs_changed`,
 * `X-Hub-Signature: sha256=<hex>`, delivery id in X-Request-Id. Like Cloud, one
 * delivery may change several refs.
 */
export const bitbucketServer: Provider = {
  name: "bitbucket-server",

  // Checked after Bitbucket Cloud, which sends the same header.
  detect: (headers) => headers.has("x-event-key"),

  verify: (delivery, keys) => verifyHexSignature(delivery, keys.secrets, "X-Hub-Signature", "sha256="),

  parse({ headers, body }): Delivery {
    const event = headers.get("x-event-key") ?? "";
    if (event === "diagnostics:ping") return { kind: "ignored", reason: "Bitbucket ping: the webhook works; nothing to deploy" };
    if (event !== "repo:refs_changed") return { kind: "ignored", reason: `Bitbucket event '${event}' is not deployed` };

    const payload = parsePayload(RefsChangedPayload, { headers, body });
    const cloneUrl = payload.repository?.links?.clone?.find((link) => link.name === "http")?.href;
    return {
      kind: "push",
      events: payload.changes.map((change, i) => ({
        provider: "bitbucket-server",
        deliveryId: headers.get("x-request-id") ?? undefined,
        ref: checkedRef(change.refId, `changes[${i}].refId`),
        before: change.fromHash,
        after: change.toHash,
        // An annotated tag's toHash is the tag object; the fetch peels it to its commit.
        commit: change.toHash,
        deleted: change.type === "DELETE" || change.toHash === ZERO_OID,
        forced: undefined,
        cloneUrl,
      })),
    };
  },
};
