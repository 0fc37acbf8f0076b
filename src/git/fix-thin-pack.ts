import { createHash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { deflateSync } from "node:zlib";
import type { GitObject } from "./pack-file.ts";
import { objectId } from "./object-id.ts";
import type { PackIndexEntry } from "./pack-index.ts";

const TYPE_CODES = { commit: 1, tree: 2, blob: 3, tag: 4 } as const;

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
      const entry = await writeWholeObject(file, offset, base);
      entries.push(entry);
      offset = entry.end;
    }
    return { entries, checksum: await sealPack(file, offset) };
  } finally {
    await file.close();
  }
}

/** Writes `object` undeltified at `offset`; returns its index entry and where it ends. */
export async function writeWholeObject(file: FileHandle, offset: number, object: GitObject): Promise<PackIndexEntry & { end: number }> {
  const entry = Buffer.concat([packEntryHeader(TYPE_CODES[object.type], object.data.length), deflateSync(object.data)]);
  await file.write(entry, 0, entry.length, offset);
  return { oid: objectId(object.type, object.data), offset, crc32: Bun.hash.crc32(entry), end: offset + entry.length };
}

/** Ends a pack whose content stops at `end`: its SHA-1, over everything before, becomes the trailer (and is returned). */
export async function sealPack(file: FileHandle, end: number): Promise<Buffer> {
  const hash = createHash("sha1");
  const chunk = Buffer.allocUnsafe(1024 * 1024);
  for (let at = 0; at < end; ) {
    const { bytesRead } = await file.read(chunk, 0, Math.min(chunk.length, end - at), at);
    hash.update(chunk.subarray(0, bytesRead));
    at += bytesRead;
  }
  const checksum = hash.digest();
  await file.write(checksum, 0, 20, end);
  await file.truncate(end + 20);
  return checksum;
}

/** Type in bits 4–6 of the first byte, size as a little-endian base-128 number starting with its low 4 bits. */
function packEntryHeader(type: number, size: number): Buffer {
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
