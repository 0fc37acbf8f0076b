/**
 * What the deploy thread and the checkout thread (checkout-thread.ts,
 * checkout-worker.ts) send each other, packed flat. A structured clone of
 * 25k Change objects took ~110 ms to send and as long to receive, and the 25k
 * index entries coming back 50–100 ms more, all of it on the critical path of
 * a 50k-file first deploy; two strings and a typed array take ~6 ms, and the
 * entries come back through shared memory (checkout-share.ts).
 */
import type { Change } from "./tree-diff.ts";

/** New files only (a fresh checkout has no `before`), in the order given. */
export interface PackedChanges {
  /** The paths joined by NUL, the one byte a git path cannot hold. */
  paths: string;
  /** The blob ids, 40 hex digits each, back to back. */
  oids: string;
  modes: Uint32Array;
}

export interface CheckoutJob {
  job: number;
  gitdir: string;
  dir: string;
  changes: PackedChanges;
  /** The CheckoutShare's buffer: which chunks are left, and the stat data of the files written. */
  share: SharedArrayBuffer;
}

export type CheckoutReply =
  | { job: number; error?: undefined }
  | { job: number; error: { name: string; message: string; code?: string | undefined; syscall?: string | undefined; path?: string | undefined } };

export function packChanges(changes: readonly Change[]): PackedChanges {
  const modes = new Uint32Array(changes.length);
  changes.forEach((c, i) => (modes[i] = c.after!.mode));
  return { paths: changes.map((c) => c.path).join("\0"), oids: changes.map((c) => c.after!.oid).join(""), modes };
}

export function unpackChanges(packed: PackedChanges): Change[] {
  const paths = packed.modes.length === 0 ? [] : packed.paths.split("\0");
  return paths.map((path, i) => ({ path, before: undefined, after: { mode: packed.modes[i]!, oid: packed.oids.slice(i * 40, i * 40 + 40) } }));
}
