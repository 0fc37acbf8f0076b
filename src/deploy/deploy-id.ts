import { randomBytes } from "node:crypto";

let lastStamp = "";
let sequence = 0;

/**
 * Sortable in creation order, unique, safe as a file name (releases are named
 * after deploys): UTC time to the millisecond, a per-process sequence for ids
 * made in the same millisecond, and random bits against other processes,
 * e.g. 20261122T004301123Z-0000-3fa9c2.
 */
export function newDeployId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(".", "");
  sequence = stamp === lastStamp ? sequence + 1 : 0;
  lastStamp = stamp;
  return `${stamp}-${sequence.toString().padStart(4, "0")}-${randomBytes(3).toString("hex")}`;
}
