import { createHash } from "node:crypto";
import type { ObjectType } from "./pack-file.ts";

/** git's object id: SHA-1 over "<type> <size>\0" and the content. */
export function objectId(type: ObjectType, data: Uint8Array): Uint8Array {
  return createHash("sha1").update(`${type} ${data.length}\0`).update(data).digest();
}
