import { randomBytes } from "node:crypto";

/**
 * Sortable, unique, safe as a file name (releases are named after deploys):
 * UTC time to the millisecond plus random bits, e.g. 20261122T004301123Z-3fa9c2.
 */
export function newDeployId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(".", "");
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}
