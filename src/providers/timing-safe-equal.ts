import { createHash, timingSafeEqual as equalBuffers } from "node:crypto";

/**
 * Compares two secrets in time independent of where they differ and of the
 * expected value's length: both sides are hashed to equal-length digests first.
 */
export function timingSafeEqual(actual: string | Uint8Array, expected: string | Uint8Array): boolean {
  const a = createHash("sha256").update(actual).digest();
  const b = createHash("sha256").update(expected).digest();
  return equalBuffers(a, b);
}
