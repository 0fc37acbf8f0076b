/**
 * A second thread for big fresh checkouts. Writing a file of a new tree is
 * CPU work in zlib and in the kernel (~30 µs per small file here, against
 * ~20 µs for git), and a server has more than one core: two threads wrote
 * 10k files in ~70% of the time one took (docs/performance.md, section 9).
 * The thread starts with the first checkout that needs it and stays, keeping
 * no process alive while idle; one that dies fails the share it had and the
 * next checkout starts another.
 */
import { packChanges, type CheckoutJob, type CheckoutReply } from "./checkout-messages.ts";
import type { CheckoutShare } from "./checkout-share.ts";
import { PackError } from "./pack-error.ts";
import type { Change } from "./tree-diff.ts";
import { createJobThread } from "../util/job-thread.ts";

const thread = createJobThread("git/checkout-worker.ts", "checkout");

/**
 * Has the helper thread write chunks of `changes` (all new files) into `dir`
 * as it takes them from `share`, beside this thread doing the same; resolves
 * once it finds none left, its files' stat data recorded in `share`.
 */
export function checkOutOnHelperThread(gitdir: string, dir: string, changes: Change[], share: CheckoutShare): Promise<void> {
  return thread.run<void, CheckoutReply>(
    (job) => ({ job, gitdir, dir, changes: packChanges(changes), share: share.buffer }) satisfies CheckoutJob,
    (reply, settle) => (reply.error ? settle.reject(rebuildError(reply.error)) : settle.resolve()),
  );
}

/**
 * Starts the thread ahead of a checkout that may need it, so that it has
 * loaded its modules by the time the pack has arrived.
 */
export function warmCheckoutThread(): void {
  thread.warm();
}

/** A corrupt object stays a PackError, a system error keeps its code (ENOSPC, EACCES): failure.ts classifies them. */
function rebuildError(e: NonNullable<CheckoutReply["error"]>): Error {
  if (e.name === "PackError") return new PackError(e.message);
  return Object.assign(new Error(e.message), { code: e.code, syscall: e.syscall, path: e.path });
}
