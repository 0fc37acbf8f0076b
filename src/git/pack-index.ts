/**
 * Pack index files (.idx, version 2): where each object of a .pack starts.
 * Format: Documentation/gitformat-pack.txt in git.git. Only SHA-1.
 *
 *   magic ff744f63, version 2, fan-out (256 × u32 cumulative counts),
 *   sorted object ids, CRC32 of each packed entry, 31-bit offsets (high bit set:
 *   index into the 64-bit offset table that follows), pack checksum, idx checksum.
 */
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { PackError } from "./pack-error.ts";

const MAGIC = 0xff744f63;
const HEADER = 8;
const FANOUT = 256 * 4;

export interface PackIndexEntry {
  /** 20-byte binary object id. */
  oid: Uint8Array;
  offset: number;
  crc32: number;
}

export interface PackIndex {
  count: number;
  /** Offset of the object in the pack, or undefined when this pack lacks it. */
  find(oid: string): number | undefined;
  /** Every entry's start offset, ascending: an entry ends where the next begins. */
  sortedOffsets(): Float64Array;
  /** Every object id, in index order (hex). */
  oids(): string[];
}

export async function readPackIndex(path: string): Promise<PackIndex> {
  return parsePackIndex(new Uint8Array(await readFile(path)), path);
}

export function parsePackIndex(buf: Uint8Array, name = "pack index"): PackIndex {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < HEADER + FANOUT + 40 || view.getUint32(0) !== MAGIC || view.getUint32(4) !== 2) {
    throw new PackError(`${name}: not a version 2 pack index`);
  }
  const count = view.getUint32(HEADER + 255 * 4);
  const oids = HEADER + FANOUT;
  const offsets = oids + count * 24; // past the ids (20 each) and the CRCs (4 each)
  const large = offsets + count * 4;
  if (buf.length < large + 40) throw new PackError(`${name}: truncated (${count} objects claimed)`);

  const offsetAt = (i: number): number => {
    const small = view.getUint32(offsets + i * 4);
    if (!(small & 0x80000000)) return small;
    const slot = large + (small & 0x7fffffff) * 8;
    return view.getUint32(slot) * 2 ** 32 + view.getUint32(slot + 4);
  };

  return {
    count,
    find(hex) {
      const oid = Buffer.from(hex, "hex");
      const first = oid[0]!;
      let lo = first === 0 ? 0 : view.getUint32(HEADER + (first - 1) * 4);
      let hi = view.getUint32(HEADER + first * 4);
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        // Compared in place, byte by byte: a subarray and a native call per step cost more than
        // the few bytes that differ (called twice per file a checkout writes).
        const at = oids + mid * 20;
        let i = 1;
        while (i < 20 && buf[at + i] === oid[i]) i++;
        if (i === 20) return offsetAt(mid);
        if (buf[at + i]! < oid[i]!) lo = mid + 1;
        else hi = mid;
      }
      return undefined;
    },
    oids() {
      return Array.from({ length: count }, (_, i) => Buffer.from(buf.subarray(oids + i * 20, oids + i * 20 + 20)).toString("hex"));
    },
    sortedOffsets() {
      const all = new Float64Array(count);
      for (let i = 0; i < count; i++) all[i] = offsetAt(i);
      return all.sort();
    },
  };
}

/** Serialises an index for a pack whose trailing checksum is `packChecksum`. */
export function encodePackIndex(entries: PackIndexEntry[], packChecksum: Uint8Array): Uint8Array {
  const sorted = [...entries].sort((a, b) => Buffer.compare(a.oid, b.oid));
  const count = sorted.length;
  const bigOffsets = sorted.filter((e) => e.offset >= 0x80000000).length;
  const size = HEADER + FANOUT + count * 28 + bigOffsets * 8 + 40;
  const buf = new Uint8Array(size);
  const view = new DataView(buf.buffer);
  view.setUint32(0, MAGIC);
  view.setUint32(4, 2);
  const fanout = new Uint32Array(256);
  for (const e of sorted) fanout[e.oid[0]!]!++;
  let total = 0;
  for (let i = 0; i < 256; i++) view.setUint32(HEADER + i * 4, (total += fanout[i]!));

  const oids = HEADER + FANOUT;
  const crcs = oids + count * 20;
  const offsets = crcs + count * 4;
  let large = offsets + count * 4;
  let nextLarge = 0;
  sorted.forEach((e, i) => {
    buf.set(e.oid, oids + i * 20);
    view.setUint32(crcs + i * 4, e.crc32 >>> 0);
    if (e.offset < 0x80000000) {
      view.setUint32(offsets + i * 4, e.offset);
    } else {
      view.setUint32(offsets + i * 4, 0x80000000 | nextLarge++);
      view.setUint32(large, Math.floor(e.offset / 2 ** 32));
      view.setUint32(large + 4, e.offset >>> 0);
      large += 8;
    }
  });
  buf.set(packChecksum, large);
  buf.set(createHash("sha1").update(buf.subarray(0, large + 20)).digest(), large + 20);
  return buf;
}

export async function writePackIndex(path: string, entries: PackIndexEntry[], packChecksum: Uint8Array): Promise<void> {
  await writeFile(path, encodePackIndex(entries, packChecksum), { mode: 0o444 });
}
