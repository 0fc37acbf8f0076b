import { lstat, readdir, readFile, readlink, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { removeDirIds } from "./release-dirs.ts";
import type { ReleaseLayout } from "./release-layout.ts";

/** A complete release: its tree is fully written and its marker names the commit it holds. */
export interface Release {
  id: string;
  commit: string;
  ref: string;
  createdAt: string;
}

const ID = /^[0-9A-Za-z][0-9A-Za-z._-]*$/;

/** Deploy ids name directories: no separators, no leading dot. */
export function isReleaseId(id: string): boolean {
  return ID.test(id);
}

export function releaseDir(layout: ReleaseLayout, id: string): string {
  return join(layout.releases, id);
}

function markerPath(layout: ReleaseLayout, id: string): string {
  return join(layout.markers, `${id}.json`);
}

/** Every complete release, oldest first (deploy ids sort by time). */
export async function listReleases(layout: ReleaseLayout): Promise<Release[]> {
  const names = await readdir(layout.markers).catch(() => [] as string[]);
  const ids = names.filter((n) => n.endsWith(".json")).map((n) => n.slice(0, -5)).filter((id) => ID.test(id));
  const found = await Promise.all(ids.map((id) => readRelease(layout, id)));
  return found.filter((r) => r !== undefined).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export async function readRelease(layout: ReleaseLayout, id: string): Promise<Release | undefined> {
  if (!ID.test(id)) return undefined;
  const [text, dir] = await Promise.all([
    readFile(markerPath(layout, id), "utf8").catch(() => undefined),
    stat(releaseDir(layout, id)).catch(() => undefined),
  ]);
  if (text === undefined || !dir?.isDirectory()) return undefined;
  const parsed = JSON.parse(text) as Release;
  return { id, commit: parsed.commit, ref: parsed.ref, createdAt: parsed.createdAt };
}

/**
 * Seals a release once its tree is complete. The marker's ctime is also the
 * release's "sealed at" time: a file of this release with an older ctime is
 * exactly as materialized, one changed since (by a hook, by hand) is newer.
 */
export async function writeReleaseMarker(layout: ReleaseLayout, release: Release): Promise<void> {
  const path = markerPath(layout, release.id);
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, JSON.stringify(release) + "\n");
  await rename(temp, path);
}

/** The ctime (ns) of a release's marker, or undefined when it has none. */
export async function sealedAt(layout: ReleaseLayout, id: string): Promise<bigint | undefined> {
  return (await stat(markerPath(layout, id), { bigint: true }).catch(() => undefined))?.ctimeNs;
}

/**
 * Removes a release's marker: its directory is no release any more, invisible
 * to rollback, prune and the next deploy's base. Then its directory
 * identities (release-dirs.ts), which mean nothing without the marker; a kill
 * in between leaves them orphaned, and pruneReleases sweeps them.
 */
export async function unsealRelease(layout: ReleaseLayout, id: string): Promise<void> {
  await rm(markerPath(layout, id), { force: true });
  await removeDirIds(layout, id);
}

/** Unseals first, then deletes: a crash half-way leaves an unsealed directory (garbage), never a broken release. */
export async function removeRelease(layout: ReleaseLayout, id: string): Promise<void> {
  await unsealRelease(layout, id);
  await rm(releaseDir(layout, id), { recursive: true, force: true });
}

/** The id `current` points to, or undefined before the first publish. */
export async function readCurrentId(layout: ReleaseLayout): Promise<string | undefined> {
  const st = await lstat(layout.current).catch(() => undefined);
  if (!st?.isSymbolicLink()) return undefined;
  const target = await readlink(layout.current);
  const match = /^releases\/([^/]+)$/.exec(target);
  return match?.[1];
}

export async function readCurrentRelease(layout: ReleaseLayout): Promise<Release | undefined> {
  const id = await readCurrentId(layout);
  return id === undefined ? undefined : readRelease(layout, id);
}

/** The newest release older than `id`: what a rollback from `id` goes back to. */
export function releaseBefore<R extends { id: string }>(releases: R[], id: string | undefined): R | undefined {
  if (id === undefined) return undefined;
  return releases.filter((r) => r.id < id).at(-1);
}
