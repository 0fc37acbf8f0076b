/**
 * A second thread for big fresh checkouts. Writing a file of a new tree is
 * CPU work in zlib and in the kernel (~30 µs per small file here, against
 * ~20 µs for git), and a server has more than one core: two threads wrote
 * 10k files in ~60% of the time one took. The thread starts with the first
 * checkout that needs it and stays, keeping no process alive while idle;
 * one that dies fails the share it had and the next checkout starts another.
 */
import { fileURLToPath } from "node:url";
import type { IndexEntry } from "./index-file.ts";
import { PackError } from "./pack-error.ts";
import type { Change } from "./tree-diff.ts";

/** As in deploy-thread.ts: inside the executable the entry point is served relative to src/. */
const WORKER = import.meta.url.startsWith("file:///$bunfs/") ? "./git/checkout-worker.ts" : fileURLToPath(new URL("./checkout-worker.ts", import.meta.url));

export interface CheckoutJob {
  job: number;
  gitdir: string;
  dir: string;
  changes: Change[];
}

export type CheckoutReply =
  | { job: number; entries: IndexEntry[]; error?: undefined }
  | { job: number; entries?: undefined; error: { name: string; message: string; code?: string | undefined; syscall?: string | undefined; path?: string | undefined } };

let worker: Worker | undefined;
const jobs = new Map<number, { resolve(entries: IndexEntry[]): void; reject(err: Error): void }>();
let nextJob = 1;

function lost(reason: string): void {
  worker = undefined;
  for (const job of jobs.values()) job.reject(new Error(`the checkout thread stopped: ${reason}`));
  jobs.clear();
}

function start(): Worker {
  const w = new Worker(WORKER, { smol: true });
  w.onmessage = ({ data }: MessageEvent<CheckoutReply>) => {
    const job = jobs.get(data.job);
    if (!job) return;
    jobs.delete(data.job);
    if (jobs.size === 0) w.unref();
    if (data.error) job.reject(rebuildError(data.error));
    else job.resolve(data.entries);
  };
  w.onerror = (event) => {
    if (worker === w) lost(event.message);
    w.terminate();
  };
  w.addEventListener("close", () => worker === w && lost("it exited"));
  return w;
}

/** Writes `changes` (all new files) into `dir` on the helper thread; resolves with their index entries. */
export function checkOutOnHelperThread(gitdir: string, dir: string, changes: Change[]): Promise<IndexEntry[]> {
  worker ??= start();
  const w = worker;
  const job = nextJob++;
  return new Promise((resolve, reject) => {
    jobs.set(job, { resolve, reject });
    w.ref();
    w.postMessage({ job, gitdir, dir, changes } satisfies CheckoutJob);
  });
}

/** A corrupt object stays a PackError, a system error keeps its code (ENOSPC, EACCES): failure.ts classifies them. */
function rebuildError(e: NonNullable<CheckoutReply["error"]>): Error {
  if (e.name === "PackError") return new PackError(e.message);
  return Object.assign(new Error(e.message), { code: e.code, syscall: e.syscall, path: e.path });
}
