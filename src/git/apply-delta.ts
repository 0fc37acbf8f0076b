import { PackError } from "./pack-error.ts";

/**
 * Applies a git delta (gitformat-pack.txt, "Deltified representation") to
 * `base`: a header of two sizes, then copy-from-base and insert instructions.
 */
export function applyDelta(base: Uint8Array, delta: Uint8Array): Uint8Array {
  let pos = 0;
  const varint = () => {
    let value = 0;
    let shift = 0;
    let c: number;
    do {
      if (pos >= delta.length) throw new PackError("delta header is truncated");
      c = delta[pos++]!;
      value += (c & 0x7f) * 2 ** shift;
      shift += 7;
    } while (c & 0x80);
    return value;
  };
  const baseSize = varint();
  if (baseSize !== base.length) throw new PackError(`delta expects a base of ${baseSize} bytes, got ${base.length}`);
  const out = new Uint8Array(varint());
  let written = 0;
  while (pos < delta.length) {
    const op = delta[pos++]!;
    if (op & 0x80) {
      let from = 0;
      let size = 0;
      for (let i = 0; i < 4; i++) if (op & (1 << i)) from += delta[pos++]! * 2 ** (8 * i);
      for (let i = 0; i < 3; i++) if (op & (0x10 << i)) size += delta[pos++]! * 2 ** (8 * i);
      if (size === 0) size = 0x10000;
      if (from + size > base.length || written + size > out.length) throw new PackError("delta copies out of range");
      out.set(base.subarray(from, from + size), written);
      written += size;
    } else if (op > 0) {
      if (pos + op > delta.length || written + op > out.length) throw new PackError("delta inserts out of range");
      out.set(delta.subarray(pos, pos + op), written);
      written += op;
      pos += op;
    } else {
      throw new PackError("delta has a reserved instruction 0");
    }
  }
  if (written !== out.length) throw new PackError(`delta produced ${written} bytes, expected ${out.length}`);
  return out;
}
