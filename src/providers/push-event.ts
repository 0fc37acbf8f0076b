import type { Secret } from "../config/secret.ts";

export type ProviderName = "gitlab" | "github" | "gitea" | "forgejo" | "gogs" | "bitbucket-cloud" | "bitbucket-server";

export const ZERO_OID = "0000000000000000000000000000000000000000";

/** What every forge's push delivery is normalized to: one per pushed ref. */
export interface PushEvent {
  provider: ProviderName;
  /** The forge's id for this delivery, when it sends one (used to drop redeliveries). */
  deliveryId: string | undefined;
  /** Full ref name, already checked against git's ref-format rules. */
  ref: string;
  before: string;
  after: string;
  /** The commit to deploy: `after`, or for an annotated tag the commit it points to when the forge says. */
  commit: string;
  deleted: boolean;
  forced: boolean | undefined;
  /** Informational only: hooksd always fetches from the target's configured remote. */
  cloneUrl: string | undefined;
}

/**
 * A verified delivery is either a push (one event per changed ref; only
 * Bitbucket sends several in one delivery) or something answered and left alone.
 */
export type Delivery =
  | { kind: "push"; events: PushEvent[] }
  | { kind: "ignored"; reason: string };

export interface RawDelivery {
  headers: Headers;
  body: Uint8Array;
}

/** What a delivery may be verified with. Several secrets are allowed so that a secret can be rotated. */
export interface VerificationKeys {
  secrets: readonly Secret[];
  /** GitLab signing tokens (the `webhook-signature` form). */
  signingTokens: readonly Secret[];
}

export interface Provider {
  name: ProviderName;
  /** True when the headers say this forge sent the delivery. */
  detect(headers: Headers): boolean;
  /** Throws an HttpError(401) unless the delivery was signed with one of the keys. Runs before any parsing. */
  verify(delivery: RawDelivery, keys: VerificationKeys): void;
  /** Parses a verified delivery; throws an HttpError(400) naming the bad field. */
  parse(delivery: RawDelivery): Delivery;
}
