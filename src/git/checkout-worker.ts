/**
 * The checkout helper thread's entry point (see checkout-thread.ts): writes
 * chunks of the fresh checkout it is sent as it takes them (checkout-share.ts),
 * with its own reader of the same object store, and answers when none is
 * left, or with the error.
 */
import { writeShare } from "./checkout.ts";
import { openCheckoutShare } from "./checkout-share.ts";
import { openObjectStore } from "./object-store.ts";
import { unpackChanges, type CheckoutJob, type CheckoutReply } from "./checkout-messages.ts";
import { BACKGROUND_NICE, lowerThreadPriority } from "../util/thread-priority.ts";

declare const self: Worker;

// Deploy work, so at the deploy thread's priority (see deploy-worker.ts).
lowerThreadPriority(BACKGROUND_NICE);

self.onmessage = async ({ data }: MessageEvent<CheckoutJob>) => {
  const { job, gitdir, dir } = data;
  const changes = unpackChanges(data.changes);
  // What repositoryAt() builds, without importing repository.ts: it loads isomorphic-git, which this thread never uses.
  const repo = { dir, gitdir, objects: openObjectStore(gitdir), cache: {} };
  let reply: CheckoutReply;
  try {
    await writeShare(repo, dir, changes, openCheckoutShare(data.share));
    reply = { job };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    reply = { job, error: { name: e.name, message: e.message ?? String(err), code: e.code, syscall: e.syscall, path: e.path } };
  }
  self.postMessage(reply);
};
