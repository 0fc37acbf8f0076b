import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { dirIdsOwner } from "./release-dirs.ts";
import type { ReleaseLayout } from "./release-layout.ts";
import { listReleases, readCurrentId, releaseBefore, removeRelease } from "./releases.ts";

/** Unsealed release directories younger than this may still be being written by another process. */
const ABANDONED_AFTER_MS = 60 * 60 * 1000;

/** Of `releases` (oldest first), those a prune removes: all but the newest `keep`, `current` and the one before it. */
export function prunableReleases<R extends { id: string }>(releases: R[], current: string | undefined, keep: number): R[] {
  const protectedIds = new Set([current, releaseBefore(releases, current)?.id, ...releases.slice(-keep).map((r) => r.id)]);
  return releases.filter((r) => !protectedIds.has(r.id));
}

/**
 * Keeps the newest `keep` releases plus, always, the current one and the one
 * before it (what a rollback goes back to). Runs under the target lock, so no
 * switch happens meanwhile.
 */
export async function pruneReleases(layout: ReleaseLayout, keep: number): Promise<string[]> {
  const releases = await listReleases(layout);
  const current = await readCurrentId(layout);
  const pruned: string[] = [];
  for (const release of prunableReleases(releases, current, keep)) {
    await removeRelease(layout, release.id);
    pruned.push(release.id);
  }

  // Leftovers of crashes: unsealed release directories and temporary links.
  const sealed = new Set(releases.map((r) => r.id));
  for (const name of await readdir(layout.releases).catch(() => [] as string[])) {
    if (sealed.has(name) || name === current) continue;
    const st = await stat(join(layout.releases, name)).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > ABANDONED_AFTER_MS) await rm(join(layout.releases, name), { recursive: true, force: true });
  }
  for (const name of await readdir(layout.dir)) {
    if (name.startsWith(".current-")) await rm(join(layout.dir, name), { force: true });
  }
  // Directory identities whose release went without them (a kill inside
  // unsealRelease or before a marker was written): with no directory left,
  // no deploy can be writing them.
  const left = new Set(await readdir(layout.releases).catch(() => [] as string[]));
  for (const name of await readdir(layout.markers).catch(() => [] as string[])) {
    const owner = dirIdsOwner(name);
    if (owner !== undefined && !sealed.has(owner) && !left.has(owner)) await rm(join(layout.markers, name), { force: true });
  }
  return pruned;
}
