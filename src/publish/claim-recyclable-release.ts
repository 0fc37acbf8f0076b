import { rename, rm, utimes } from "node:fs/promises";
import { prunableReleases } from "./prune-releases.ts";
import { LOCK_WAIT_MS } from "./publish-release.ts";
import { readDirIds, type DirIds } from "./release-dirs.ts";
import type { ReleaseLayout } from "./release-layout.ts";
import { listReleases, readCurrentId, releaseBefore, releaseDir, sealedAt, unsealRelease, type Release } from "./releases.ts";
import { withTargetLock } from "./target-lock.ts";

/** A release taken over by a new deploy: what it held, when it was sealed (its files' trust line), and its directories then. */
export interface RecycledRelease {
  release: Release;
  sealedAt: bigint;
  dirIds: DirIds;
}

/**
 * Takes over, for the new release `next.id`, the newest release that
 * publishing `next.id` would prune anyway, and renames its directory to
 * DIR/releases/<next.id>; undefined when there is none (the first `keep`
 * deploys, or a small `keep`), and the caller builds the release afresh.
 *
 * Never `base` (the release the new one is built against) nor the release
 * before it: if this deploy fails, that is what `hooksd rollback` goes back
 * to. Nor, read again under the lock, what serves now and the release before
 * that (a rollback may have run since `base` was read). Should the deploy
 * fail, the recycled release is gone: a failed deploy costs one release the
 * next successful one would have pruned.
 */
export async function claimRecyclableRelease(layout: ReleaseLayout, next: { id: string; base: Release | undefined; keep: number }): Promise<RecycledRelease | undefined> {
  return withTargetLock(layout.lock, { timeoutMs: LOCK_WAIT_MS, purpose: `recycle a release for deploy ${next.id}` }, async () => {
    const releases = await listReleases(layout);
    const current = await readCurrentId(layout);
    // The releases as the prune after this deploy's switch sees them: the new one serving, newest.
    const afterSwitch = [...releases, { id: next.id }].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const spared = new Set([current, releaseBefore(releases, current)?.id, next.base?.id, releaseBefore(releases, next.base?.id)?.id]);
    const chosen = prunableReleases(afterSwitch, next.id, next.keep).filter((r) => !spared.has(r.id)).at(-1);
    const release = releases.find((r) => r.id === chosen?.id);
    const sealed = release && (await sealedAt(layout, release.id));
    // Without its directory identities (sealed by an older hooksd) nothing in it could be trusted: built afresh instead.
    const dirIds = release && (await readDirIds(layout, release.id));
    if (release === undefined || sealed === undefined || dirIds === undefined) return undefined;

    // Unsealed first, renamed second, both under the lock, so rollback
    // (which lists sealed releases under this lock) can never pick it from
    // here on. A kill between the two leaves an unsealed directory under the
    // old id: no reader, rollback or base uses it, and prune's one-hour rule
    // removes it. A kill after the rename leaves an unsealed directory under
    // this deploy's id, as a kill while building a fresh release would: the
    // redo removes `request.redoes.id`'s release (pipeline.ts), and failing
    // that, prune's one-hour rule does.
    await unsealRelease(layout, release.id);
    const dir = releaseDir(layout, next.id);
    await rm(dir, { recursive: true, force: true });
    await rename(releaseDir(layout, release.id), dir);
    // The one-hour rule judges an unsealed directory by its mtime, and this
    // one's is as old as the recycled release: touched, so that another
    // process's prune does not take it for a crash's leftover while it is rebuilt.
    const now = new Date();
    await utimes(dir, now, now);
    return { release, sealedAt: sealed, dirIds };
  });
}
