/**
 * Reads objects out of a .pack file by offset with positioned reads, so a
 * pack is never loaded whole: memory is one entry plus a bounded cache of
 * delta bases. Format: Documentation/gitformat-pack.txt in git.git.
 */
import { readSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { promisify } from "node:util";
import { inflate } from "node:zlib";
import { applyDelta } from "./apply-delta.ts";
import { PackError } from "./pack-error.ts";

export type ObjectType = "commit" | "tree" | "blob" | "tag";

export interface GitObject {
  type: ObjectType;
  data: Uint8Array;
}

export const OFS_DELTA = 6;
export const REF_DELTA = 7;
const TYPE_NAMES: Record<number, ObjectType> = { 1: "commit", 2: "tree", 3: "blob", 4: "tag" };

export function typeName(kind: number): ObjectType {
  const name = TYPE_NAMES[kind];
  if (!name) throw new PackError(`unknown object type ${kind}`);
  return name;
}

/** The header of one pack entry: its kind (1–4, or a delta), inflated size, and where its zlib data starts. */
export interface EntryHeader {
  kind: number;
  size: number;
  /** Bytes from the entry's start to its zlib data. */
  headerLength: number;
  /** OFS_DELTA: absolute offset of the base entry. */
  baseOffset?: number;
  /** REF_DELTA: hex id of the base object. */
  baseOid?: string;
}

/** Parses an entry header from `buf`, which starts at the entry at pack offset `offset`. */
export function parseEntryHeader(buf: Uint8Array, offset: number): EntryHeader {
  let pos = 0;
  const byte = () => {
    if (pos >= buf.length) throw new PackError(`entry at ${offset}: header runs past the data`);
    return buf[pos++]!;
  };
  let c = byte();
  const kind = (c >> 4) & 7;
  let size = c & 15;
  let shift = 4;
  while (c & 0x80) {
    c = byte();
    size += (c & 0x7f) * 2 ** shift;
    shift += 7;
  }
  if (kind === OFS_DELTA) {
    // Big-endian base-128 with an implicit +1 per continuation byte.
    c = byte();
    let distance = c & 0x7f;
    while (c & 0x80) {
      c = byte();
      distance = (distance + 1) * 128 + (c & 0x7f);
    }
    if (distance > offset || distance === 0) throw new PackError(`entry at ${offset}: delta base offset out of range`);
    return { kind, size, headerLength: pos, baseOffset: offset - distance };
  }
  if (kind === REF_DELTA) {
    if (pos + 20 > buf.length) throw new PackError(`entry at ${offset}: header runs past the data`);
    const baseOid = Buffer.from(buf.subarray(pos, pos + 20)).toString("hex");
    return { kind, size, headerLength: pos + 20, baseOid };
  }
  typeName(kind);
  return { kind, size, headerLength: pos };
}

export interface PackFileOptions {
  /** Where the entry starting at `offset` ends (the next entry, or the trailer). */
  entryEnd(offset: number): number;
  /** Finds a REF_DELTA base: in this pack (an offset), elsewhere (an object), or nowhere. */
  findBase(oid: string): Promise<number | GitObject | undefined>;
  /** Bytes of inflated delta bases kept for reuse. */
  cacheBytes?: number;
}

export class PackFile {
  private readonly cache = new Map<number, GitObject>();
  private cached = 0;
  private readonly cacheBytes: number;
  /** The last bytes read ahead, and where the last small entry read ended (see readSmall). */
  private window: { start: number; bytes: Buffer } | undefined;
  private lastEnd = -1;

  private constructor(
    private readonly fd: FileHandle,
    readonly path: string,
    private readonly options: PackFileOptions,
  ) {
    this.cacheBytes = options.cacheBytes ?? 16 * 1024 * 1024;
  }

  static async open(path: string, options: PackFileOptions): Promise<PackFile> {
    return new PackFile(await open(path, "r"), path, options);
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.fd.close();
  }

  /** The raw bytes of the entry at `offset`: header and zlib data, exactly. */
  async rawEntry(offset: number): Promise<Uint8Array> {
    const end = this.options.entryEnd(offset);
    // A small read costs less than the trip to the thread pool and back (checkout reads thousands).
    if (end - offset <= OFF_THREAD_BYTES) return this.readSmall(offset, end);
    const buf = Buffer.allocUnsafe(end - offset);
    const { bytesRead } = await this.fd.read(buf, 0, buf.length, offset);
    if (bytesRead !== buf.length) throw new PackError(`${this.path}: entry at ${offset} is truncated`);
    return buf;
  }

  /**
   * A small entry, from the bytes read ahead, or read alone, or, when it
   * starts where the last one read ended, read with READ_AHEAD_BYTES after
   * it. git's pack-objects writes a commit's blobs in the order its tree walk
   * met them, so a checkout in tree order reads the pack front to back: one
   * read then serves dozens of entries (97% of a 50k-file checkout's), where a
   * read per entry was a system call and an allocation per file.
   */
  private readSmall(offset: number, end: number): Uint8Array {
    const w = this.window;
    const sequential = offset === this.lastEnd;
    this.lastEnd = end;
    if (w && offset >= w.start && end <= w.start + w.bytes.length) return w.bytes.subarray(offset - w.start, end - w.start);
    const bytes = Buffer.allocUnsafe(sequential ? Math.max(READ_AHEAD_BYTES, end - offset) : end - offset);
    const bytesRead = readSync(this.fd.fd, bytes, 0, bytes.length, offset);
    if (bytesRead < end - offset) throw new PackError(`${this.path}: entry at ${offset} is truncated`);
    if (sequential) this.window = { start: offset, bytes: bytes.subarray(0, bytesRead) };
    return bytes.subarray(0, end - offset);
  }

  /**
   * The object at `offset` when it is stored whole and small, read and
   * inflated without a promise; undefined for a delta or a big entry, which
   * read() handles. A first deploy's blobs are nearly all of the first kind.
   */
  readSmallSync(offset: number): GitObject | undefined {
    const end = this.options.entryEnd(offset);
    if (end - offset > OFF_THREAD_BYTES) return undefined;
    const raw = this.readSmall(offset, end);
    const header = parseEntryHeader(raw, offset);
    if (header.kind === OFS_DELTA || header.kind === REF_DELTA || header.size > OFF_THREAD_BYTES) return undefined;
    return { type: typeName(header.kind), data: inflateSmall(raw.subarray(header.headerLength), header.size, offset) };
  }

  /** The object stored at `offset`, with deltas applied. */
  async read(offset: number): Promise<GitObject> {
    const hit = this.cache.get(offset);
    if (hit) {
      // Refresh its place in the LRU order.
      this.cache.delete(offset);
      this.cache.set(offset, hit);
      return hit;
    }
    const raw = await this.rawEntry(offset);
    const header = parseEntryHeader(raw, offset);
    const data = await inflateEntry(raw.subarray(header.headerLength), header.size, offset);
    if (header.kind !== OFS_DELTA && header.kind !== REF_DELTA) return { type: typeName(header.kind), data };

    const base = await this.readBase(header, offset);
    const object = { type: base.type, data: applyDelta(base.data, data) };
    this.remember(offset, object);
    return object;
  }

  private async readBase(header: EntryHeader, offset: number): Promise<GitObject> {
    if (header.baseOffset !== undefined) return this.readAsBase(header.baseOffset);
    const found = await this.options.findBase(header.baseOid!);
    if (found === undefined) throw new PackError(`${this.path}: entry at ${offset} is a delta against ${header.baseOid}, which is missing`);
    return typeof found === "number" ? this.readAsBase(found) : found;
  }

  /** Delta bases are what the cache is for: chains share them. */
  private async readAsBase(offset: number): Promise<GitObject> {
    const object = await this.read(offset);
    this.remember(offset, object);
    return object;
  }

  private remember(offset: number, object: GitObject): void {
    if (this.cache.has(offset) || object.data.length > this.cacheBytes / 4) return;
    this.cache.set(offset, object);
    this.cached += object.data.length;
    for (const [key, value] of this.cache) {
      if (this.cached <= this.cacheBytes) break;
      this.cache.delete(key);
      this.cached -= value.data.length;
    }
  }
}

const READ_AHEAD_BYTES = 64 * 1024;

/** Above this many bytes, inflating runs on zlib's thread pool instead of blocking the event loop (and the webhooks). */
export const OFF_THREAD_BYTES = 64 * 1024;
const inflateAsync = promisify(inflate);

export async function inflateEntry(compressed: Uint8Array, size: number, offset: number): Promise<Uint8Array> {
  if (size <= OFF_THREAD_BYTES) return inflateSmall(compressed, size, offset);
  let data: Uint8Array;
  try {
    // Output into one buffer of the known size, not 16 KB chunks joined at the end.
    data = await inflateAsync(compressed, { chunkSize: Math.max(64, size) });
  } catch (cause) {
    throw new PackError(`entry at ${offset}: corrupt zlib data`, { cause });
  }
  return checkSize(data, size, offset);
}

function inflateSmall(compressed: Uint8Array, size: number, offset: number): Uint8Array {
  let data: Uint8Array;
  try {
    // Bun's own inflate costs a third of node:zlib's per call, which counts on a checkout of 10,000 small blobs.
    data = Bun.inflateSync(compressed as Uint8Array<ArrayBuffer>, { windowBits: 15 });
  } catch (cause) {
    throw new PackError(`entry at ${offset}: corrupt zlib data`, { cause });
  }
  return checkSize(data, size, offset);
}

function checkSize(data: Uint8Array, size: number, offset: number): Uint8Array {
  if (data.length !== size) throw new PackError(`entry at ${offset}: inflated to ${data.length} bytes, header says ${size}`);
  return data;
}
