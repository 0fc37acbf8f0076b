import { createHash } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { fixThinPack } from "./fix-thin-pack.ts";
import { indexPack } from "./index-pack.ts";
import type { ObjectStore } from "./object-store.ts";
import { PackError } from "./pack-error.ts";
import { writePackIndex } from "./pack-index.ts";

/**
 * Streams a pack from the network into objects/pack, checking its trailing
 * SHA-1 on the way, indexes it from the file, and only then gives it its
 * final names. Crash reasoning: until the renames, only tmp_* files exist,
 * which git and hooksd ignore (and this function removes on any failure);
 * the .pack is renamed before its .idx because a pack is only looked up
 * through its index, so no reader ever sees an index without its pack.
 * A thin pack is completed from `objects` before it is named. `onObjects`
 * hears the pack's object count from its header, long before it is indexed.
 * Refs are not touched here: the caller moves them once this has returned.
 */
export async function storePack(gitdir: string, stream: AsyncIterable<Uint8Array>, objects?: ObjectStore, onObjects?: (count: number) => void): Promise<{ objects: number }> {
  const dir = join(gitdir, "objects", "pack");
  await mkdir(dir, { recursive: true });
  const tag = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  const tmpPack = join(dir, `tmp_pack_hooksd_${tag}`);
  const tmpIdx = join(dir, `tmp_idx_hooksd_${tag}`);
  try {
    const trailer = await receive(tmpPack, stream, onObjects);
    const indexed = await indexPack(tmpPack, { external: objects && ((oid) => objects.read(oid).catch(() => undefined)) });
    if (Buffer.compare(indexed.checksum, trailer) !== 0) throw new PackError("pack trailer changed while indexing");
    let { entries, checksum } = indexed;
    if (indexed.missingBases.length > 0) {
      const fixed = await fixThinPack(tmpPack, await Promise.all(indexed.missingBases.map((oid) => objects!.read(oid))));
      entries = [...entries, ...fixed.entries];
      checksum = fixed.checksum;
    }
    if (entries.length === 0) {
      await rm(tmpPack, { force: true });
      return { objects: 0 };
    }
    const name = `pack-${Buffer.from(checksum).toString("hex")}`;
    await writePackIndex(tmpIdx, entries, checksum);
    await rename(tmpPack, join(dir, `${name}.pack`));
    await rename(tmpIdx, join(dir, `${name}.idx`));
    return { objects: entries.length };
  } catch (err) {
    await Promise.all([rm(tmpPack, { force: true }), rm(tmpIdx, { force: true })]);
    throw err;
  }
}

/** Writes the stream to `path`; returns its 20-byte trailer once it matches the SHA-1 of everything before it. */
async function receive(path: string, stream: AsyncIterable<Uint8Array>, onObjects?: (count: number) => void): Promise<Uint8Array> {
  const file = await open(path, "wx", 0o444);
  const hash = createHash("sha1");
  // "PACK", version, object count: 12 bytes, which may come in more than one chunk.
  let header: Buffer | undefined = onObjects && Buffer.alloc(0);
  // The last 20 bytes seen so far may be the trailer, so they are hashed only once more data follows.
  let tail: Uint8Array = new Uint8Array(0);
  let total = 0;
  try {
    for await (const chunk of stream) {
      await file.write(chunk);
      total += chunk.length;
      if (header) {
        header = Buffer.concat([header, chunk.subarray(0, 12 - header.length)]);
        if (header.length === 12) {
          if (header.toString("latin1", 0, 4) === "PACK") onObjects!(header.readUInt32BE(8));
          header = undefined;
        }
      }
      if (chunk.length >= 20) {
        hash.update(tail);
        hash.update(chunk.subarray(0, chunk.length - 20));
        tail = Uint8Array.from(chunk.subarray(chunk.length - 20));
      } else {
        const joined = Buffer.concat([tail, chunk]);
        const keep = Math.min(20, joined.length);
        hash.update(joined.subarray(0, joined.length - keep));
        tail = Uint8Array.from(joined.subarray(joined.length - keep));
      }
    }
  } finally {
    await file.close();
  }
  if (total < 32) throw new PackError(`the remote sent a truncated pack (${total} bytes)`, { transfer: "cut" });
  if (Buffer.compare(hash.digest(), tail) !== 0) throw new PackError("the pack's checksum does not match its content (corrupted in transit)");
  return tail;
}
