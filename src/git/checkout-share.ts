/**
 * A big fresh checkout shared by the deploy thread and the checkout thread
 * through shared memory: both take the next chunk of files in tree order from
 * one counter until none is left, so a thread that is slower (still loading
 * its modules, or descheduled) simply takes fewer. Fixed halves had left one
 * thread idle for up to 700 ms of a 50k-file checkout. Each file's stat data
 * goes into a table beside the counter, read back as index entries once both
 * threads are done.
 */
import type { IndexEntry } from "./index-file.ts";
import type { Change } from "./tree-diff.ts";

/** Files per chunk: long enough runs in one directory, short enough for the two threads to finish together. */
const CHUNK_FILES = 500;

/** An index entry's fields beyond path, id and mode; every one is 32 bits in the index. */
const STAT_FIELDS = ["ctimeSeconds", "ctimeNanoseconds", "mtimeSeconds", "mtimeNanoseconds", "dev", "ino", "uid", "gid", "size", "flags"] as const;

export interface CheckoutShare {
  /** What crosses to the other thread; `openCheckoutShare` opens it there. */
  readonly buffer: SharedArrayBuffer;
  /** The next chunk [start, end) of the files, or undefined when all are taken. */
  take(): { start: number; end: number } | undefined;
  /** Hands out no more chunks: a write failed, and nothing after it should start. */
  stop(): void;
  record(index: number, entry: IndexEntry): void;
  /** The entry recorded for `changes[index]`. */
  entryAt(index: number, change: Change): IndexEntry;
}

export function createCheckoutShare(files: number): CheckoutShare {
  return openCheckoutShare(new SharedArrayBuffer(4 + files * STAT_FIELDS.length * 4));
}

export function openCheckoutShare(buffer: SharedArrayBuffer): CheckoutShare {
  const next = new Int32Array(buffer, 0, 1);
  const stats = new Uint32Array(buffer, 4);
  const files = stats.length / STAT_FIELDS.length;
  return {
    buffer,
    take() {
      const start = Atomics.add(next, 0, CHUNK_FILES);
      return start < files ? { start, end: Math.min(files, start + CHUNK_FILES) } : undefined;
    },
    stop() {
      Atomics.store(next, 0, files);
    },
    record(index, entry) {
      const at = index * STAT_FIELDS.length;
      STAT_FIELDS.forEach((field, f) => (stats[at + f] = entry[field]));
    },
    entryAt(index, change) {
      const at = index * STAT_FIELDS.length;
      return {
        path: change.path,
        oid: change.after!.oid,
        mode: change.after!.mode,
        ctimeSeconds: stats[at]!,
        ctimeNanoseconds: stats[at + 1]!,
        mtimeSeconds: stats[at + 2]!,
        mtimeNanoseconds: stats[at + 3]!,
        dev: stats[at + 4]!,
        ino: stats[at + 5]!,
        uid: stats[at + 6]!,
        gid: stats[at + 7]!,
        size: stats[at + 8]!,
        flags: stats[at + 9]!,
      };
    },
  };
}
