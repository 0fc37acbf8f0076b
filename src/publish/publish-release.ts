import { DEFAULT_HEALTH_TIMEOUT_SECONDS, DEFAULT_KEEP } from "../config/schema.ts";
import { checkHealth } from "./health-check.ts";
import { pruneReleases } from "./prune-releases.ts";
import { ReleaseError } from "./release-error.ts";
import type { ReleaseLayout } from "./release-layout.ts";
import { readCurrentId } from "./releases.ts";
import { switchCurrent } from "./switch-current.ts";
import { withTargetLock } from "./target-lock.ts";

/** How long a publish waits for a rollback (or another process's publish) to finish. */
export const LOCK_WAIT_MS = 10 * 60 * 1000;

export interface PublishOptions {
  keep?: number | undefined;
  healthUrl?: string | undefined;
  healthTimeoutSeconds?: number | undefined;
}

export interface PublishResult {
  /** The release that served before. */
  previous: string | undefined;
  pruned: string[];
}

/**
 * Switches `current` to release `id` under the target lock; with a health URL,
 * switches back to what served before unless it answers 2xx in time. The
 * "before" is read under the lock, so a rollback that ran while this release
 * was being built is respected.
 */
export async function publishRelease(layout: ReleaseLayout, id: string, options: PublishOptions): Promise<PublishResult> {
  return withTargetLock(layout.lock, { timeoutMs: LOCK_WAIT_MS, purpose: `deploy ${id}` }, async () => {
    const previous = await readCurrentId(layout);
    await switchCurrent(layout, id);
    if (options.healthUrl !== undefined) {
      const problem = await checkHealth(options.healthUrl, options.healthTimeoutSeconds ?? DEFAULT_HEALTH_TIMEOUT_SECONDS);
      if (problem !== undefined) {
        await switchCurrent(layout, previous);
        throw new ReleaseError("HEALTH_CHECK_FAILED", `health check failed, switched back to ${previous ?? "no release"}: ${problem}`);
      }
    }
    return { previous, pruned: await pruneReleases(layout, options.keep ?? DEFAULT_KEEP) };
  });
}
