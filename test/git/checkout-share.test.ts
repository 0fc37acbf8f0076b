import { describe, expect, test } from "bun:test";
import { createCheckoutShare, openCheckoutShare } from "../../src/git/checkout-share.ts";
import type { IndexEntry } from "../../src/git/index-file.ts";
import type { Change } from "../../src/git/tree-diff.ts";

const change = (i: number): Change => ({ path: `dir/file-${i}`, before: undefined, after: { mode: i % 2 ? 0o100755 : 0o100644, oid: i.toString(16).padStart(40, "0") } });

function entryOf(c: Change, i: number): IndexEntry {
  return {
    path: c.path,
    oid: c.after!.oid,
    mode: c.after!.mode,
    ctimeSeconds: 1_700_000_000 + i,
    ctimeNanoseconds: 999_999_999 - i,
    mtimeSeconds: 0xffffffff - i,
    mtimeNanoseconds: i,
    dev: 2049,
    ino: 0xfffffff0 + (i % 16),
    uid: 1000,
    gid: 0,
    size: 12345 + i,
    flags: 0x60000000 + c.path.length,
  };
}

describe("a fresh checkout shared between two threads", () => {
  test("hands out every file exactly once, in chunks, between two views of the same memory", () => {
    const files = 1234;
    const ours = createCheckoutShare(files);
    const theirs = openCheckoutShare(ours.buffer);
    const taken: number[] = [];
    for (let turn = 0; ; turn++) {
      const chunk = (turn % 3 ? ours : theirs).take();
      if (!chunk) break;
      for (let i = chunk.start; i < chunk.end; i++) taken.push(i);
    }
    expect(taken.sort((a, b) => a - b)).toEqual(Array.from({ length: files }, (_, i) => i));
    expect(ours.take()).toBeUndefined();
  });

  test("hands out nothing more once either side stops it", () => {
    const ours = createCheckoutShare(5000);
    const theirs = openCheckoutShare(ours.buffer);
    expect(ours.take()).toEqual({ start: 0, end: 500 });
    theirs.stop();
    expect(ours.take()).toBeUndefined();
    expect(theirs.take()).toBeUndefined();
  });

  test("gives back each file's entry as the other side recorded it, every 32-bit field intact", () => {
    const changes = Array.from({ length: 40 }, (_, i) => change(i));
    const ours = createCheckoutShare(changes.length);
    const theirs = openCheckoutShare(ours.buffer);
    changes.forEach((c, i) => theirs.record(i, entryOf(c, i)));
    expect(changes.map((c, i) => ours.entryAt(i, c))).toEqual(changes.map(entryOf));
  });
});
