/**
 * Builds the .idx for a .pack already on disk, like `git index-pack`, in
 * bounded memory: one sequential pass finds every entry's extent, CRC32 and
 * (for whole objects) id; a second pass resolves deltas by reading their
 * bases back from the file through a bounded cache. Memory is a read window,
 * the largest object, and ~60 bytes per object — never the whole pack.
 */
import { open, stat, type FileHandle } from "node:fs/promises";
import { createInflate, inflateSync } from "node:zlib";
import { objectId } from "./object-id.ts";
import { createYielder } from "../util/yielder.ts";
import { PackError } from "./pack-error.ts";
import { OFF_THREAD_BYTES, OFS_DELTA, PackFile, parseEntryHeader, REF_DELTA, typeName, type GitObject } from "./pack-file.ts";
import type { PackIndexEntry } from "./pack-index.ts";

const WINDOW = 4 * 1024 * 1024;

interface Scanned {
  offset: number;
  end: number;
  crc32: number;
  oid: Uint8Array | undefined;
  delta: boolean;
}

export interface IndexedPack {
  entries: PackIndexEntry[];
  /** The pack's trailing SHA-1, which names it (pack-<hex>.pack). */
  checksum: Uint8Array;
  /** Delta bases a thin pack left out and `external` supplied: they must be appended to the pack. */
  missingBases: string[];
}


/**
 * Indexes the pack at `path`. `yieldEvery` ms of uninterrupted CPU work the
 * indexer gives the event loop a turn, so a daemon keeps answering webhooks.
 */
export async function indexPack(path: string, options: { yieldEveryMs?: number; external?: (oid: string) => Promise<GitObject | undefined> } = {}): Promise<IndexedPack> {
  const breathe = createYielder(options.yieldEveryMs ?? 4);

  const size = (await stat(path)).size;
  const fd = await open(path, "r");
  let scanned: Scanned[];
  let checksum: Uint8Array;
  try {
    ({ scanned, checksum } = await scan(fd, size, path, breathe));
  } finally {
    await fd.close();
  }

  const ends = new Map(scanned.map((s) => [s.offset, s.end]));
  const byOid = new Map<string, number>();
  for (const s of scanned) if (s.oid) byOid.set(Buffer.from(s.oid).toString("hex"), s.offset);
  const external = new Set<string>();
  const pack = await PackFile.open(path, {
    entryEnd: (offset) => ends.get(offset) ?? fail(`no entry starts at offset ${offset}`),
    findBase: async (oid) => {
      const offset = byOid.get(oid);
      if (offset !== undefined || !options.external) return offset;
      // Same id, same content: if the base turns out to be in the pack after all, nothing is lost.
      const object = await options.external(oid);
      if (object) external.add(oid);
      return object;
    },
  });
  try {
    // REF_DELTA bases may themselves be deltas resolved later in the pass: repeat until no progress.
    let pending = scanned.filter((s) => s.delta);
    while (pending.length > 0) {
      const stuck: Scanned[] = [];
      for (const entry of pending) {
        await breathe();
        let object;
        try {
          object = await pack.read(entry.offset);
        } catch (err) {
          if (err instanceof PackError && /which is missing/.test(err.message)) {
            stuck.push(entry);
            continue;
          }
          throw err;
        }
        entry.oid = objectId(object.type, object.data);
        byOid.set(Buffer.from(entry.oid).toString("hex"), entry.offset);
      }
      if (stuck.length === pending.length) {
        throw new PackError(`${path}: ${stuck.length} deltas have bases that are not in the pack (a thin pack, and the repository lacks them too)`);
      }
      pending = stuck;
    }
  } finally {
    await pack.close();
  }
  return {
    entries: scanned.map((s) => ({ oid: s.oid!, offset: s.offset, crc32: s.crc32 })),
    checksum,
    missingBases: [...external].filter((oid) => !byOid.has(oid)),
  };
}

function fail(message: string): never {
  throw new PackError(message);
}

/** The sequential pass: every entry's extent and CRC32, and the id of every non-delta object. */
async function scan(fd: FileHandle, size: number, path: string, breathe: () => Promise<void>): Promise<{ scanned: Scanned[]; checksum: Uint8Array }> {
  const reader = windowReader(fd, size);
  const header = await reader.bytes(0, 12);
  const view = new DataView(header.buffer, header.byteOffset, 12);
  if (Buffer.from(header.subarray(0, 4)).toString("latin1") !== "PACK") throw new PackError(`${path}: not a pack file`);
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) throw new PackError(`${path}: unsupported pack version ${version}`);
  const count = view.getUint32(8);
  const dataEnd = size - 20;
  if (dataEnd < 12) throw new PackError(`${path}: truncated`);

  const scanned: Scanned[] = [];
  // One hasher for every object: digest() resets it, which spares a hasher per object.
  const hasher = new Bun.CryptoHasher("sha1");
  let offset = 12;
  // Awaited only when there is something to wait for: the window is read
  // ahead, and most objects inflate synchronously, so most take no promise
  // (a few per object had been ~a fifth of indexing 50k small objects).
  for (let i = 0; i < count; i++) {
    if ((i & 63) === 0) await breathe();
    if (offset >= dataEnd) throw new PackError(`${path}: ends after ${i} of ${count} objects`);
    const headLength = Math.min(32, dataEnd - offset);
    const head = reader.peek(offset, headLength) ?? (await reader.bytes(offset, headLength));
    const entry = parseEntryHeader(head, offset);
    const dataStart = offset + entry.headerLength;
    // zlib never grows data by more than a few bytes per 16 KB block, so this window holds the whole stream.
    const bound = Math.min(dataEnd - dataStart, entry.size + (entry.size >> 10) + 64);
    const compressed = reader.peek(dataStart, bound) ?? (await reader.bytes(dataStart, bound));
    const delta = entry.kind === OFS_DELTA || entry.kind === REF_DELTA;
    const hash = delta ? undefined : hasher.update(`${typeName(entry.kind)} ${entry.size}\0`);
    let consumed: number;
    let produced: number;
    try {
      ({ consumed, produced } = entry.size <= OFF_THREAD_BYTES ? inflateSmallCounting(compressed, hash) : await inflateCounting(compressed, hash));
    } catch (cause) {
      throw new PackError(`${path}: corrupt zlib data in the entry at ${offset}`, { cause });
    }
    if (produced !== entry.size) throw new PackError(`${path}: entry at ${offset} inflates to ${produced} bytes, header says ${entry.size}`);
    const end = dataStart + consumed;
    const crc32 = Bun.hash.crc32(reader.peek(offset, end - offset) ?? (await reader.bytes(offset, end - offset)));
    scanned.push({ offset, end, crc32, delta, oid: hash?.digest() });
    offset = end;
  }
  if (offset !== dataEnd) throw new PackError(`${path}: ${dataEnd - offset} unexpected bytes after the last object`);
  return { scanned, checksum: await reader.bytes(dataEnd, 20) };
}

/**
 * Inflates one small zlib stream from the start of `window` (which may run
 * past its end), feeding the output to `hash`; returns how many bytes the
 * stream took and gave.
 */
function inflateSmallCounting(window: Uint8Array, hash: Bun.CryptoHasher | undefined): { consumed: number; produced: number } {
  const { buffer, engine } = inflateSync(window, { info: true } as object) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
  hash?.update(buffer);
  return { consumed: engine.bytesWritten, produced: buffer.length };
}

/** The same for a big object, inflated on zlib's thread pool chunk by chunk, so the event loop keeps answering webhooks. */
async function inflateCounting(window: Uint8Array, hash: Bun.CryptoHasher | undefined): Promise<{ consumed: number; produced: number }> {
  // Output in 256 KB chunks rather than zlib's 16 KB: a 1 MB object then costs 4 buffers, not 64.
  const inflater = createInflate({ chunkSize: 256 * 1024 });
  let produced = 0;
  const done = new Promise<void>((resolve, reject) => {
    inflater.on("data", (chunk: Buffer) => {
      produced += chunk.length;
      hash?.update(chunk);
    });
    inflater.on("end", resolve);
    inflater.on("error", reject);
  });
  // The window is only valid until the next read, which waits for this: no copy needed.
  inflater.end(Buffer.from(window.buffer, window.byteOffset, window.byteLength));
  await done;
  return { consumed: inflater.bytesWritten, produced };
}

/** Positioned reads through one reusable window, so a sequential scan costs few syscalls. */
function windowReader(fd: FileHandle, size: number) {
  let capacity = Buffer.alloc(0);
  let buf = capacity;
  let start = 0;
  return {
    /** The bytes when the window holds them already, else undefined. */
    peek(at: number, length: number): Uint8Array | undefined {
      return at >= start && at + length <= start + buf.length ? buf.subarray(at - start, at - start + length) : undefined;
    },
    async bytes(at: number, length: number): Promise<Uint8Array> {
      if (at < start || at + length > start + buf.length) {
        const want = Math.min(size - at, Math.max(length, WINDOW));
        if (want < length) throw new PackError(`read past the end of the pack`);
        // One buffer, reused: callers are done with a slice before asking for the next.
        if (capacity.length < want) capacity = Buffer.allocUnsafe(want);
        buf = capacity.subarray(0, want);
        const { bytesRead } = await fd.read(buf, 0, want, at);
        if (bytesRead !== want) throw new PackError(`short read from the pack`);
        start = at;
      }
      return buf.subarray(at - start, at - start + length);
    },
  };
}
