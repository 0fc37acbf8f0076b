import { open, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { sealPack, writeWholeObject } from "./fix-thin-pack.ts";
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
        const entry = await writeWholeObject(file, offset, await objects.read(oid));
        entries.push(entry);
        offset = entry.end;
      }
    }
    const header = Buffer.from([0x50, 0x41, 0x43, 0x4b, 0, 0, 0, 2, 0, 0, 0, 0]); // "PACK", version 2
    header.writeUInt32BE(entries.length, 8);
    await file.write(header, 0, 12, 0);
    const trailer = await sealPack(file, offset);
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
