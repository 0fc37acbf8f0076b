export type ProviderName = "gitlab";

export const ZERO_OID = "0000000000000000000000000000000000000000";

/** What every forge's push delivery is normalized to. */
export interface PushEvent {
  provider: ProviderName;
  /** The forge's id for this delivery, when it sends one (used to drop redeliveries). */
  deliveryId: string | undefined;
  /** Full ref name, already checked against git's ref-format rules. */
  ref: string;
  before: string;
  after: string;
  /** The commit to deploy: `after`, or for an annotated tag the commit it points to. */
  commit: string;
  deleted: boolean;
  forced: boolean | undefined;
  cloneUrl: string | undefined;
}

/** A verified delivery is either a push to consider, or something answered and left alone. */
export type Delivery =
  | { kind: "push"; event: PushEvent }
  | { kind: "ignored"; reason: string };

export interface RawDelivery {
  headers: Headers;
  body: Uint8Array;
}

export interface Provider {
  name: ProviderName;
  /** True when the headers say this forge sent the delivery. */
  detect(headers: Headers): boolean;
  /** Throws an HttpError(401) unless the delivery was signed with `secret`. Runs before any parsing. */
  verify(delivery: RawDelivery, secret: string): void;
  /** Parses a verified delivery; throws an HttpError(400) naming the bad field. */
  parse(delivery: RawDelivery): Delivery;
}
