/**
 * Reads objects from a repository's object store: packs through their .idx
 * with positioned reads, then loose objects. Packs are immutable and named by
 * their checksum, so open packs are kept across deploys (a daemon's long-lived
 * object cache) with a bound on how many stay open.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { inflateSync } from "node:zlib";
import { PackError } from "./pack-error.ts";
import { PackFile, typeName, type GitObject, type ObjectType } from "./pack-file.ts";
import { readPackIndex, type PackIndex } from "./pack-index.ts";

interface OpenPack {
  index: PackIndex;
  pack: PackFile;
  entryEnd(offset: number): number;
}

// consolidatePacks keeps a repository at 17 packs at most, so this serves a dozen targets without reopening.
const MAX_OPEN_PACKS = 256;
/** Path of the .idx → its pack, opening or (`ready`, for readSmallBlobSync) open; least recently used first. */
const openPacks = new Map<string, { opening: Promise<OpenPack>; ready?: OpenPack }>();

export interface ObjectStore {
  /** The object, or a PackError if it is absent or corrupt. */
  read(oid: string): Promise<GitObject>;
  /** Reads and checks the type: a blob where a tree is expected is a corrupt repository. */
  readAs(oid: string, type: ObjectType): Promise<Uint8Array>;
  has(oid: string): Promise<boolean>;
  /** Bytes the object takes in its pack (0 when loose or absent): a cheap hint of its size before reading it. */
  storedSize(oid: string): Promise<number>;
  /**
   * A blob stored whole and small in a pack already open, without a promise;
   * undefined whenever read() has more to do (not found yet, a delta, big).
   */
  readSmallBlobSync(oid: string): Uint8Array | undefined;
  /** Lists and opens the packs as they are now, so that readSmallBlobSync finds what they hold. */
  openAll(): Promise<void>;
}

export function openObjectStore(gitdir: string): ObjectStore {
  const objects = join(gitdir, "objects");
  let packs: string[] | undefined;

  const listPacks = async () =>
    (await readdir(join(objects, "pack")).catch(() => [] as string[]))
      .filter((name) => name.endsWith(".idx"))
      .sort()
      .map((name) => join(objects, "pack", name));

  async function findInPacks(oid: string, rescan: boolean): Promise<GitObject | undefined> {
    if (!packs || rescan) packs = await listPacks();
    for (const idx of packs) {
      // A pack merged away by consolidatePacks since we listed them: look again.
      const opened = await openPack(idx, findAnywhere).catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT" && !rescan) return undefined;
        throw err;
      });
      if (!opened) return findInPacks(oid, true);
      const { index, pack } = opened;
      const offset = index.find(oid);
      if (offset !== undefined) return pack.read(offset);
    }
    return undefined;
  }

  // Packs first: hooksd stores only packs, and a failed open per object costs more than the object.
  async function findAnywhere(oid: string): Promise<GitObject | undefined> {
    return (await findInPacks(oid, false)) ?? (await readLoose(objects, oid)) ?? (await findInPacks(oid, true));
  }

  const store: ObjectStore = {
    async read(oid) {
      if (!/^[0-9a-f]{40}$/.test(oid)) throw new PackError(`${JSON.stringify(oid)} is not an object id`);
      const object = await findAnywhere(oid);
      if (!object) throw new PackError(`object ${oid} is not in the repository`);
      return object;
    },
    async readAs(oid, type) {
      const object = await store.read(oid);
      if (object.type !== type) throw new PackError(`object ${oid} is a ${object.type}, expected a ${type}`);
      return object.data;
    },
    async has(oid) {
      return (await findAnywhere(oid).catch(() => undefined)) !== undefined;
    },
    async storedSize(oid) {
      try {
        for (const idx of (packs ??= await listPacks())) {
          const { index, entryEnd } = await openPack(idx, findAnywhere);
          const offset = index.find(oid);
          if (offset !== undefined) return entryEnd(offset) - offset;
        }
      } catch {
        // Only a hint: a pack merged away meanwhile just means "unknown".
      }
      return 0;
    },
    async openAll() {
      packs = await listPacks();
      await Promise.all(packs.map((idx) => openPack(idx, findAnywhere)));
    },
    readSmallBlobSync(oid) {
      for (const idx of packs ?? []) {
        const open = openPacks.get(idx)?.ready;
        if (!open) return undefined;
        const offset = open.index.find(oid);
        if (offset === undefined) continue;
        const object = open.pack.readSmallSync(offset);
        if (object && object.type !== "blob") throw new PackError(`object ${oid} is a ${object.type}, expected a blob`);
        return object?.data;
      }
      return undefined;
    },
  };
  return store;
}

async function readLoose(objects: string, oid: string): Promise<GitObject | undefined> {
  const file = await readFile(join(objects, oid.slice(0, 2), oid.slice(2))).catch(() => undefined);
  if (!file) return undefined;
  const raw = inflateSync(file);
  const nul = raw.indexOf(0);
  const [type, size] = raw.subarray(0, nul).toString("latin1").split(" ");
  const data = raw.subarray(nul + 1);
  if (Number(size) !== data.length) throw new PackError(`loose object ${oid} is corrupt (size ${size}, found ${data.length})`);
  return { type: typeName(["", "commit", "tree", "blob", "tag"].indexOf(type ?? "")), data };
}

function openPack(idx: string, external: (oid: string) => Promise<GitObject | undefined>): Promise<OpenPack> {
  const known = openPacks.get(idx);
  if (known) {
    openPacks.delete(idx);
    openPacks.set(idx, known);
    return known.opening;
  }
  const opened = (async () => {
    const index = await readPackIndex(idx);
    const offsets = index.sortedOffsets();
    const packPath = idx.replace(/\.idx$/, ".pack");
    const size = Bun.file(packPath).size;
    const entryEnd = (offset: number) => {
        // The next entry's start, found by binary search; the last entry ends at the trailer.
        let lo = 0;
        let hi = offsets.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (offsets[mid]! <= offset) lo = mid + 1;
          else hi = mid;
        }
        return lo < offsets.length ? offsets[lo]! : size - 20;
    };
    const pack = await PackFile.open(packPath, {
      entryEnd,
      findBase: async (oid) => {
        const offset = index.find(oid);
        return offset ?? external(oid);
      },
    });
    return { index, pack, entryEnd };
  })();
  const slot: { opening: Promise<OpenPack>; ready?: OpenPack } = { opening: opened };
  openPacks.set(idx, slot);
  opened.then(
    (open) => (slot.ready = open),
    () => openPacks.delete(idx),
  );
  while (openPacks.size > MAX_OPEN_PACKS) {
    const [oldest, evicted] = openPacks.entries().next().value!;
    openPacks.delete(oldest);
    void evicted.opening.then((p) => p.pack.close()).catch(() => undefined);
  }
  return opened;
}

/** Closes packs that are about to be deleted, so no descriptor keeps their disk space. */
export async function forgetPacks(idxPaths: string[]): Promise<void> {
  for (const idx of idxPaths) {
    const known = openPacks.get(idx);
    openPacks.delete(idx);
    await known?.opening.then((p) => p.pack.close()).catch(() => undefined);
  }
}
