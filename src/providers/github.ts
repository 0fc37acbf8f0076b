import * as v from "valibot";
import { verifyHexSignature } from "./hmac.ts";
import { checkedRef, Oid, parsePayload, RefName } from "./parse-payload.ts";
import { ZERO_OID, type Delivery, type Provider, type ProviderName } from "./push-event.ts";

/** GitHub's push payload, which Gitea, Forgejo and Gogs copy (without created/deleted/forced in Gitea's case). */
const PushPayload = v.object({
  ref: RefName,
  before: Oid,
  after: Oid,
  deleted: v.optional(v.boolean()),
  forced: v.optional(v.boolean()),
  // For an annotated tag `after` is the tag object; head_commit is the commit it points to.
  head_commit: v.nullish(v.object({ id: Oid })),
  repository: v.optional(v.object({ clone_url: v.optional(v.string()) })),
});

export interface GitHubStyleForge {
  name: ProviderName;
  /** As shown in messages: "GitHub", "Gitea". */
  label: string;
  eventHeader: string;
  deliveryHeader: string;
  signatureHeader: string;
  /** "sha256=" for GitHub; Gitea, Forgejo and Gogs send bare hex. */
  signaturePrefix: string;
}

/** GitHub and the forges that imitate it differ only in header names and the signature prefix. */
export function createGitHubStyleProvider(forge: GitHubStyleForge): Provider {
  return {
    name: forge.name,
    detect: (headers) => headers.has(forge.eventHeader),
    verify: (delivery, keys) => verifyHexSignature(delivery, keys.secrets, forge.signatureHeader, forge.signaturePrefix),

    parse({ headers, body }): Delivery {
      const event = headers.get(forge.eventHeader) ?? "";
      if (event === "ping") return { kind: "ignored", reason: `${forge.label} ping: the webhook works; nothing to deploy` };
      if (event === "delete") return { kind: "ignored", reason: `${forge.label} delete event: a deletion never removes the site` };
      if (event !== "push") return { kind: "ignored", reason: `${forge.label} event '${event}' is not deployed` };

      const payload = parsePayload(PushPayload, { headers, body });
      return {
        kind: "push",
        events: [
          {
            provider: forge.name,
            deliveryId: headers.get(forge.deliveryHeader) ?? undefined,
            ref: checkedRef(payload.ref),
            before: payload.before,
            after: payload.after,
            commit: payload.head_commit?.id ?? payload.after,
            deleted: payload.deleted ?? payload.after === ZERO_OID,
            forced: payload.forced,
            cloneUrl: payload.repository?.clone_url,
          },
        ],
      };
    },
  };
}

/** https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries */
export const github = createGitHubStyleProvider({
  name: "github",
  label: "GitHub",
  eventHeader: "x-github-event",
  deliveryHeader: "x-github-delivery",
  signatureHeader: "X-Hub-Signature-256",
  signaturePrefix: "sha256=",
});
