import { objectId } from "./object-id.ts";

/**
 * Git's object id for a blob, as hex: what `git hash-object` prints for the
 * content. For a symlink the content is the link target.
 */
export function hashBlob(content: Uint8Array): string {
  return Buffer.from(objectId("blob", content)).toString("hex");
}
