import { createHash } from "node:crypto";
import { open, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { packEntryHeader, TYPE_CODES } from "./fix-thin-pack.ts";
import { objectId } from "./index-pack.ts";
import { forgetPacks, type ObjectStore } from "./object-store.ts";
import { readPackIndex, writePackIndex, type PackIndexEntry } from "./pack-index.ts";

/**
 * Every incremental fetch adds one small pack, and every lookup may have to
 * try each of them: past `maxPacks`, all packs but the biggest (the first
 * snapshot) are merged into one. The merged pack holds whole objects (no
 * deltas), which for a handful of changed files costs little disk.
 *
 * Crash reasoning: the new pack is complete and named before any old one is
 * removed, and an old .idx goes before its .pack; a crash in between leaves
 * objects stored twice, which is harmless.
 */
export async function consolidatePacks(gitdir: string, objects: ObjectStore, maxPacks = 16): Promise<boolean> {
  const dir = join(gitdir, "objects", "pack");
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(".idx")).map((n) => n.slice(0, -4));
  if (names.length <= maxPacks) return false;
  const sizes = await Promise.all(names.map(async (n) => (await stat(join(dir, `${n}.pack`))).size));
  const biggest = sizes.indexOf(Math.max(...sizes));
  const merged = names.filter((_, i) => i !== biggest);

  const tmp = join(dir, `tmp_pack_hooksd_merge_${process.pid}`);
  const file = await open(tmp, "w+", 0o444);
  const entries: PackIndexEntry[] = [];
  const seen = new Set<string>();
  let offset = 12;
  try {
    await file.write(Buffer.alloc(12), 0, 12, 0); // the header, written once the count is known
    for (const name of merged) {
      const index = await readPackIndex(join(dir, `${name}.idx`));
      for (const oid of index.oids()) {
        if (seen.has(oid)) continue;
        seen.add(oid);
        const object = await objects.read(oid);
        const entry = Buffer.concat([packEntryHeader(TYPE_CODES[object.type], object.data.length), deflateSync(object.data)]);
        await file.write(entry, 0, entry.length, offset);
        entries.push({ oid: objectId(object.type, object.data), offset, crc32: Bun.hash.crc32(entry) });
        offset += entry.length;
      }
    }
    const header = Buffer.from([0x50, 0x41, 0x43, 0x4b, 0, 0, 0, 2, 0, 0, 0, 0]); // "PACK", version 2
    header.writeUInt32BE(entries.length, 8);
    await file.write(header, 0, 12, 0);
    // The trailer covers the header, which is only final now: hash the file from the start.
    const checksum = createHash("sha1").update(header);
    const chunk = Buffer.allocUnsafe(1024 * 1024);
    for (let at = 12; at < offset; ) {
      const { bytesRead } = await file.read(chunk, 0, Math.min(chunk.length, offset - at), at);
      checksum.update(chunk.subarray(0, bytesRead));
      at += bytesRead;
    }
    const trailer = checksum.digest();
    await file.write(trailer, 0, 20, offset);
    await file.close();
    const packName = `pack-${trailer.toString("hex")}`;
    await writePackIndex(`${tmp}.idx`, entries, trailer);
    await rename(tmp, join(dir, `${packName}.pack`));
    await rename(`${tmp}.idx`, join(dir, `${packName}.idx`));
  } catch (err) {
    await file.close().catch(() => undefined);
    await Promise.all([rm(tmp, { force: true }), rm(`${tmp}.idx`, { force: true })]);
    throw err;
  }
  await forgetPacks(merged.map((n) => join(dir, `${n}.idx`)));
  for (const name of merged) {
    await rm(join(dir, `${name}.idx`), { force: true });
    await rm(join(dir, `${name}.pack`), { force: true });
  }
  return true;
}
