import * as v from "valibot";
import { HttpError } from "../http/http-error.ts";
import { checkRefFormat } from "../git/ref-format.ts";
import { Oid, parsePayload } from "./parse-payload.ts";
import { timingSafeEqual } from "./timing-safe-equal.ts";
import { ZERO_OID, type Delivery, type Provider, type RawDelivery } from "./push-event.ts";

const DEPLOYED_EVENTS = new Set(["Push Hook", "Tag Push Hook"]);

const PushPayload = v.object({
  object_kind: v.picklist(["push", "tag_push"]),
  ref: v.pipe(v.string(), v.maxLength(1024)),
  before: Oid,
  after: Oid,
  // For tags GitLab sends the peeled commit here; null when the ref was deleted.
  checkout_sha: v.nullish(Oid),
  project: v.optional(v.object({ git_http_url: v.optional(v.string()) })),
});

/**
 * GitLab authenticates with a shared token sent back verbatim in
 * X-Gitlab-Token (https://docs.gitlab.com/user/project/integrations/webhooks/).
 */
export const gitlab: Provider = {
  name: "gitlab",

  detect(headers) {
    return headers.has("x-gitlab-event");
  },

  verify({ headers }: RawDelivery, secret: string) {
    const token = headers.get("x-gitlab-token");
    if (token === null) throw new HttpError(401, "MISSING_SIGNATURE", "missing X-Gitlab-Token header");
    if (!timingSafeEqual(token, secret)) throw new HttpError(401, "BAD_SIGNATURE", "X-Gitlab-Token does not match");
  },

  parse({ headers, body }): Delivery {
    const event = headers.get("x-gitlab-event") ?? "";
    if (!DEPLOYED_EVENTS.has(event)) return { kind: "ignored", reason: `GitLab event '${event}' is not deployed` };

    const payload = parsePayload(PushPayload, body);
    const badRef = checkRefFormat(payload.ref);
    if (badRef) throw new HttpError(400, "BAD_REF", `invalid payload: ref: ${badRef}`);

    const deleted = payload.after === ZERO_OID;
    return {
      kind: "push",
      event: {
        provider: "gitlab",
        deliveryId: headers.get("idempotency-key") ?? headers.get("x-gitlab-event-uuid") ?? undefined,
        ref: payload.ref,
        before: payload.before,
        after: payload.after,
        commit: payload.checkout_sha ?? payload.after,
        deleted,
        forced: undefined,
        cloneUrl: payload.project?.git_http_url,
      },
    };
  },
};
