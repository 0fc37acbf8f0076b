import { createHash } from "node:crypto";

/**
 * Git's object id for a blob: sha1 over the header "blob <byte length>\0"
 * followed by the raw content. For a symlink the content is the link target.
 */
export function hashBlob(content: Uint8Array): string {
  return createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
}
