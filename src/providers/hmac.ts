import { createHmac } from "node:crypto";
import { HttpError } from "../http/http-error.ts";
import type { Secret } from "../config/secret.ts";
import { timingSafeEqual } from "./timing-safe-equal.ts";

export function hmacSha256(key: string | Uint8Array, ...parts: (string | Uint8Array)[]): Buffer {
  const mac = createHmac("sha256", key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** True when `mac` is the HMAC of `message` under one of the secrets. Every secret is tried, whatever matched. */
export function matchesAnySecret(mac: Uint8Array, secrets: readonly Secret[], message: Uint8Array): boolean {
  let matched = false;
  for (const secret of secrets) matched = timingSafeEqual(mac, hmacSha256(secret.reveal(), message)) || matched;
  return matched;
}

/**
 * Verifies a header holding a hex HMAC-SHA256 of the raw body, with an
 * optional prefix ("sha256=" for GitHub and Bitbucket, none for Gitea and Gogs).
 * Errors name the header, never the value expected.
 */
export function verifyHexSignature(
  { headers, body }: { headers: Headers; body: Uint8Array },
  secrets: readonly Secret[],
  header: string,
  prefix = "",
): void {
  const value = headers.get(header);
  if (value === null || value === "") throw new HttpError(401, "MISSING_SIGNATURE", `missing ${header} header`);
  const hex = value.startsWith(prefix) ? value.slice(prefix.length) : undefined;
  if (hex === undefined || !/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new HttpError(401, "BAD_SIGNATURE", `${header} is not of the form ${prefix}<64 hex digits>`);
  }
  if (!matchesAnySecret(Buffer.from(hex, "hex"), secrets, body)) {
    throw new HttpError(401, "BAD_SIGNATURE", `${header} does not match the body signed with the configured secret`);
  }
}
