/**
 * The checkout helper thread's entry point (see checkout-thread.ts): writes
 * the share of a fresh checkout it is sent, with its own reader of the same
 * object store, and sends back the index entries or the error.
 */
import { applyChanges } from "./checkout.ts";
import { openObjectStore } from "./object-store.ts";
import type { CheckoutJob, CheckoutReply } from "./checkout-thread.ts";
import { BACKGROUND_NICE, lowerThreadPriority } from "../util/thread-priority.ts";

declare const self: Worker;

// Deploy work, so at the deploy thread's priority (see deploy-worker.ts).
lowerThreadPriority(BACKGROUND_NICE);

self.onmessage = async ({ data }: MessageEvent<CheckoutJob>) => {
  const { job, gitdir, dir, changes } = data;
  // What repositoryAt() builds, without importing repository.ts: it loads isomorphic-git, which this thread never uses.
  const repo = { dir, gitdir, objects: openObjectStore(gitdir), cache: {} };
  let reply: CheckoutReply;
  try {
    reply = { job, entries: await applyChanges(repo, dir, changes, { clearObstacles: false, fresh: true, alone: true }) };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    reply = { job, error: { name: e.name, message: e.message ?? String(err), code: e.code, syscall: e.syscall, path: e.path } };
  }
  self.postMessage(reply);
};
