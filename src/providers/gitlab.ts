import * as v from "valibot";
import { HttpError } from "../http/http-error.ts";
import type { Secret } from "../config/secret.ts";
import { hmacSha256 } from "./hmac.ts";
import { checkedRef, Oid, parsePayload, RefName } from "./parse-payload.ts";
import { timingSafeEqual } from "./timing-safe-equal.ts";
import { ZERO_OID, type Delivery, type Provider, type RawDelivery, type VerificationKeys } from "./push-event.ts";

const DEPLOYED_EVENTS = new Set(["Push Hook", "Tag Push Hook"]);

/** A signed delivery older or newer than this is refused: a captured one cannot be replayed later. */
export const SIGNATURE_TOLERANCE_SECONDS = 5 * 60;

const PushPayload = v.object({
  object_kind: v.picklist(["push", "tag_push"]),
  ref: RefName,
  before: Oid,
  after: Oid,
  // For tags GitLab sends the peeled commit here; null when the ref was deleted.
  checkout_sha: v.nullish(Oid),
  project: v.optional(v.object({ git_http_url: v.optional(v.string()) })),
});

/**
 * GitLab authenticates with a shared token sent back verbatim in
 * X-Gitlab-Token, or, when a signing token is configured, with
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
 * (the Standard Webhooks scheme).
 */
export const gitlab: Provider = {
  name: "gitlab",

  detect(headers) {
    return headers.has("x-gitlab-event");
  },

  verify(delivery: RawDelivery, keys: VerificationKeys) {
    const { headers } = delivery;
    // A delivery that carries a signature must pass the signature check; it never falls back to the token.
    if (keys.signingTokens.length > 0 && (headers.has("webhook-signature") || keys.secrets.length === 0)) {
      verifySigned(delivery, keys.signingTokens);
      return;
    }
    const token = headers.get("x-gitlab-token");
    if (token === null) throw new HttpError(401, "MISSING_SIGNATURE", "missing X-Gitlab-Token header");
    let matched = false;
    for (const secret of keys.secrets) matched = timingSafeEqual(token, secret.reveal()) || matched;
    if (!matched) throw new HttpError(401, "BAD_SIGNATURE", "X-Gitlab-Token does not match");
  },

  parse({ headers, body }): Delivery {
    const event = headers.get("x-gitlab-event") ?? "";
    if (!DEPLOYED_EVENTS.has(event)) return { kind: "ignored", reason: `GitLab event '${event}' is not deployed` };

    const payload = parsePayload(PushPayload, { headers, body });
    return {
      kind: "push",
      events: [
        {
          provider: "gitlab",
          deliveryId: headers.get("webhook-id") ?? headers.get("idempotency-key") ?? headers.get("x-gitlab-event-uuid") ?? undefined,
          ref: checkedRef(payload.ref),
          before: payload.before,
          after: payload.after,
          commit: payload.checkout_sha ?? payload.after,
          deleted: payload.after === ZERO_OID,
          forced: undefined,
          cloneUrl: payload.project?.git_http_url,
        },
      ],
    };
  },
};

function verifySigned({ headers, body }: RawDelivery, tokens: readonly Secret[], now = Date.now()): void {
  const id = headers.get("webhook-id");
  const timestamp = headers.get("webhook-timestamp");
  const signatures = headers.get("webhook-signature");
  for (const [name, value] of [["webhook-signature", signatures], ["webhook-id", id], ["webhook-timestamp", timestamp]] as const) {
    if (!value) throw new HttpError(401, "MISSING_SIGNATURE", `missing ${name} header`);
  }
  if (!/^\d{1,12}$/.test(timestamp!)) throw new HttpError(401, "BAD_SIGNATURE", "webhook-timestamp is not a Unix time in seconds");
  const skew = Math.abs(now / 1000 - Number(timestamp));
  if (skew > SIGNATURE_TOLERANCE_SECONDS) {
    throw new HttpError(401, "STALE_SIGNATURE", `webhook-timestamp is more than ${SIGNATURE_TOLERANCE_SECONDS / 60} minutes away from this server's clock`);
  }

  // Several space-separated signatures may come while GitLab rotates its token; one valid v1 is enough.
  const offered = signatures!
    .split(" ")
    .filter((s) => s.startsWith("v1,"))
    .map((s) => Buffer.from(s.slice(3), "base64"));
  if (offered.length === 0) throw new HttpError(401, "BAD_SIGNATURE", "webhook-signature has no v1 signature");
  const message = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);
  let matched = false;
  for (const token of tokens) {
    const expected = hmacSha256(signingKey(token), message);
    for (const mac of offered) matched = timingSafeEqual(mac, expected) || matched;
  }
  if (!matched) throw new HttpError(401, "BAD_SIGNATURE", "webhook-signature does not match the body signed with the configured signing token");
}

/** Standard Webhooks tokens are `whsec_` plus the base64 key; any other token is used as it is. */
export function signingKey(token: Secret): Uint8Array {
  const value = token.reveal();
  return value.startsWith("whsec_") ? Buffer.from(value.slice("whsec_".length), "base64") : Buffer.from(value);
}
