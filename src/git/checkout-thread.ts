/**
 * A second thread for big fresh checkouts. Writing a file of a new tree is
 * CPU work in zlib and in the kernel (~30 µs per small file here, against
 * ~20 µs for git), and a server has more than one core: two threads wrote
 * 10k files in ~70% of the time one took (docs/performance.md, section 9).
 * The thread starts with the first checkout that needs it and stays, keeping
 * no process alive while idle; one that dies fails the share it had and the
 * next checkout starts another.
 */
import type { IndexEntry } from "./index-file.ts";
import { PackError } from "./pack-error.ts";
import type { Change } from "./tree-diff.ts";
import { createJobThread } from "../util/job-thread.ts";

export interface CheckoutJob {
  job: number;
  gitdir: string;
  dir: string;
  changes: Change[];
}

export type CheckoutReply =
  | { job: number; entries: IndexEntry[]; error?: undefined }
  | { job: number; entries?: undefined; error: { name: string; message: string; code?: string | undefined; syscall?: string | undefined; path?: string | undefined } };

const thread = createJobThread("git/checkout-worker.ts", "checkout");

/** Writes `changes` (all new files) into `dir` on the helper thread; resolves with their index entries. */
export function checkOutOnHelperThread(gitdir: string, dir: string, changes: Change[]): Promise<IndexEntry[]> {
  return thread.run<IndexEntry[], CheckoutReply>(
    (job) => ({ job, gitdir, dir, changes }) satisfies CheckoutJob,
    (reply, settle) => (reply.error ? settle.reject(rebuildError(reply.error)) : settle.resolve(reply.entries)),
  );
}

/** A corrupt object stays a PackError, a system error keeps its code (ENOSPC, EACCES): failure.ts classifies them. */
function rebuildError(e: NonNullable<CheckoutReply["error"]>): Error {
  if (e.name === "PackError") return new PackError(e.message);
  return Object.assign(new Error(e.message), { code: e.code, syscall: e.syscall, path: e.path });
}
