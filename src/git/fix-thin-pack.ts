import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { deflateSync } from "node:zlib";
import type { GitObject } from "./pack-file.ts";
import { objectId } from "./index-pack.ts";
import type { PackIndexEntry } from "./pack-index.ts";

export const TYPE_CODES = { commit: 1, tree: 2, blob: 3, tag: 4 } as const;

/**
 * Completes a thin pack, like `git index-pack --fix-thin`: the delta bases the
 * sender left out (because we have them) are appended as whole objects, the
 * object count in the header is raised, and the trailing SHA-1 is recomputed.
 * git requires every pack to be self-contained; a thin one is only a transfer format.
 */
export async function fixThinPack(path: string, bases: GitObject[]): Promise<{ entries: PackIndexEntry[]; checksum: Uint8Array }> {
  const file = await open(path, "r+");
  try {
    const size = (await file.stat()).size;
    const header = Buffer.alloc(12);
    await file.read(header, 0, 12, 0);
    header.writeUInt32BE(header.readUInt32BE(8) + bases.length, 8);
    await file.write(header, 0, 12, 0);

    let offset = size - 20; // the old trailer is overwritten
    const entries: PackIndexEntry[] = [];
    for (const base of bases) {
      const entry = Buffer.concat([packEntryHeader(TYPE_CODES[base.type], base.data.length), deflateSync(base.data)]);
      await file.write(entry, 0, entry.length, offset);
      entries.push({ oid: objectId(base.type, base.data), offset, crc32: Bun.hash.crc32(entry) });
      offset += entry.length;
    }

    const hash = createHash("sha1");
    const chunk = Buffer.allocUnsafe(1024 * 1024);
    for (let at = 0; at < offset; ) {
      const { bytesRead } = await file.read(chunk, 0, Math.min(chunk.length, offset - at), at);
      hash.update(chunk.subarray(0, bytesRead));
      at += bytesRead;
    }
    const checksum = hash.digest();
    await file.write(checksum, 0, 20, offset);
    await file.truncate(offset + 20);
    return { entries, checksum };
  } finally {
    await file.close();
  }
}

/** Type in bits 4–6 of the first byte, size as a little-endian base-128 number starting with its low 4 bits. */
export function packEntryHeader(type: number, size: number): Buffer {
  const bytes: number[] = [];
  let byte = (type << 4) | (size & 15);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(byte | 0x80);
    byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}
