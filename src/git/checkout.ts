import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, renameSync, rmdirSync, symlinkSync, writeSync } from "node:fs";
import { copyFile, lstat, mkdir, rm, rmdir, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BigIntStats } from "node:fs";
import { entryFromStats, type IndexEntry } from "./index-file.ts";
import { checkOutOnHelperThread, warmCheckoutThread } from "./checkout-thread.ts";
import { createCheckoutShare, type CheckoutShare } from "./checkout-share.ts";
import { ancestors, nonDirectoryAncestorFinder } from "./local-changes.ts";
import type { Repository } from "./repository.ts";
import type { Change } from "./tree-diff.ts";
import { forEachLimit } from "../util/for-each-limit.ts";
import { createYielder } from "../util/yielder.ts";
import { removeStaleTemps, tempName } from "./stale-temps.ts";

const SYMLINK = 0o120000;
const GITLINK = 0o160000;
const BLOB_BYTES_IN_FLIGHT = 4 * 1024 * 1024;

/**
 * Writes `changes` into `dir`: deletions first, then emptied directories,
 * then additions and modifications. Each file is written beside its final
 * name and renamed into place, so a reader never sees a half-written file.
 * Returns fresh index entries for every path written.
 *
 * `reuseFrom` may name an existing file with the wanted content (the same path
 * in the previous release): it is copied with FICLONE — a reflink where the
 * file system has them, a kernel-side copy otherwise — instead of inflating
 * the blob. Never a hard link: writing into one release must not change another.
 *
 * `fresh`: `dir` was just made and nothing reads it until it is published (a
 * new release), so files are written at their names directly, which spares a
 * rename per file. A crash half-way leaves an unsealed release, which is removed.
 * A big fresh checkout is shared with a second thread (checkout-thread.ts,
 * checkout-share.ts).
 */
export async function applyChanges(
  repo: Repository,
  dir: string,
  changes: Change[],
  options: { clearObstacles: boolean; fresh?: boolean; reuseFrom?: (change: Change) => Promise<string | undefined> },
): Promise<IndexEntry[]> {
  const removals: string[] = [];
  const nonDirectoryAncestor = nonDirectoryAncestorFinder(dir);
  for (const { path, before, after } of changes) {
    // Below a symlink that took a tracked directory's place there is nothing of ours to
    // delete, and unlink() would follow the symlink out of the tree.
    if (before && !after && !(await nonDirectoryAncestor(path))) removals.push(path);
  }
  // EISDIR (Linux): a directory already took the file's place — a redo of a
  // deploy killed half-way through a file-to-directory swap. The file is gone.
  await forEachLimit(removals, 16, (path) => unlink(join(dir, path)).catch(ignore("ENOENT", "EISDIR")));
  await pruneEmptyDirs(dir, removals);

  const writes = changes.filter((c) => c.after);
  if (!options.fresh) await removeStaleTemps(dir, writes.map((c) => c.path));
  if (options.fresh && !options.reuseFrom && !options.clearObstacles && writes.length >= SHARED_FROM_FILES) {
    const share = createCheckoutShare(writes.length);
    const [theirs, ours] = await Promise.allSettled([checkOutOnHelperThread(repo.gitdir, dir, writes, share), writeShare(repo, dir, writes, share)]);
    // Both settled before anything is reported: the caller's clean-up must not race a thread still writing.
    if (theirs.status === "rejected") throw theirs.reason;
    if (ours.status === "rejected") throw ours.reason;
    return writes.map((change, i) => share.entryAt(i, change));
  }
  return writeAll(repo, dir, writes, options);
}

/**
 * One thread's part of a shared fresh checkout: takes chunks of `writes` until
 * none is left, and records each file's stat data in `share`. Run by both threads.
 */
export async function writeShare(repo: Repository, dir: string, writes: Change[], share: CheckoutShare): Promise<void> {
  for (let chunk = share.take(); chunk; chunk = share.take()) {
    const { start } = chunk;
    try {
      const entries = await writeAll(repo, dir, writes.slice(start, chunk.end), { clearObstacles: false, fresh: true });
      entries.forEach((entry, i) => share.record(start + i, entry));
    } catch (err) {
      share.stop();
      throw err;
    }
  }
}

/** Below this many files a second thread costs more to brief than it saves. */
const SHARED_FROM_FILES = 2000;

/**
 * Told, as a fresh checkout's pack starts to arrive, how many objects it
 * holds (files, and a few directories and commits): from as many as would be
 * shared, the checkout thread starts now and has loaded its modules by the
 * time the pack is indexed, instead of taking its first chunks late.
 */
export function expectFreshCheckout(objects: number): void {
  if (objects >= SHARED_FROM_FILES) warmCheckoutThread();
}

/** Writes every change; the entries come back in the order of `writes`. */
async function writeAll(repo: Repository, dir: string, writes: Change[], options: { clearObstacles: boolean; fresh?: boolean; reuseFrom?: (change: Change) => Promise<string | undefined> }): Promise<IndexEntry[]> {
  const entries: IndexEntry[] = new Array(writes.length);
  const made = new Set<string>();
  // Synchronously, so that the 16 writers in flight never race to make the same directory.
  const makeParent = (full: string) => {
    const parent = full.slice(0, full.lastIndexOf("/"));
    if (!made.has(parent)) {
      mkdirSync(parent, { recursive: true });
      made.add(parent);
    }
  };
  const maybeYield = createYielder();
  let rest = writes.map((_, index) => index);
  if (options.fresh && !options.reuseFrom && !options.clearObstacles) {
    // Most files of a fresh checkout are small blobs stored whole in an open
    // pack: each is written here with no promise at all, which was a third of
    // the time per file (~10 of ~32 µs against ~22 µs for the system calls and
    // inflating). The others take the way below.
    rest = [];
    await repo.objects.openAll();
    for (let index = 0; index < writes.length; index++) {
      if ((index & 63) === 0) await maybeYield();
      const { path, after } = writes[index]!;
      const data = after!.mode === SYMLINK || after!.mode === GITLINK ? undefined : repo.objects.readSmallBlobSync(after!.oid);
      if (!data) {
        rest.push(index);
        continue;
      }
      // Concatenated and sliced: tracked paths are already normal, and join() and dirname() cost as much as a write here.
      const full = `${dir}/${path}`;
      makeParent(full);
      entries[index] = entryFromStats(path, after!.oid, after!.mode, writeNewFileSync(full, data, permissions(after!.mode), true)!);
    }
  }
  // Small files go 16 at a time; big ones are held to a byte budget, so memory stays bounded.
  const budget = createByteBudget(BLOB_BYTES_IN_FLIGHT);
  await forEachLimit(rest, 16, async (index) => {
    await maybeYield();
    const change = writes[index]!;
    const { path, after } = change;
    const full = `${dir}/${path}`;
    if (options.clearObstacles) await clearObstacles(dir, path);
    makeParent(full);
    const source = await options.reuseFrom?.(change);
    // A copied file never passes through memory: only blobs read from the pack count against the budget.
    const size = source === undefined ? await repo.objects.storedSize(after!.oid) : 0;
    await budget.acquire(size);
    let stats: BigIntStats | undefined;
    try {
      stats = await writeEntry(repo, full, after!.mode, after!.oid, source, options.fresh ?? false);
    } finally {
      budget.release(size);
    }
    entries[index] = entryFromStats(path, after!.oid, after!.mode, stats ?? lstatSync(full, { bigint: true }));
  });
  return entries;
}

/** A new file's permission bits: masked by the umask, as git's checkout does. */
function permissions(mode: number): number {
  return mode === 0o100755 ? 0o777 : 0o666;
}

/** Up to this size a file is written with synchronous calls: cheaper than a trip through the thread pool. */
const SYNC_WRITE_BYTES = 64 * 1024;

/** Writes one entry; returns its stat data when it comes for free (a file written at its name), else undefined. */
async function writeEntry(repo: Repository, full: string, mode: number, oid: string, source: string | undefined, fresh: boolean): Promise<BigIntStats | undefined> {
  if (mode === GITLINK) {
    // Like git without `submodule update`: an empty directory marks the submodule.
    await mkdir(full, { recursive: true });
    return undefined;
  }
  const temp = fresh ? full : tempName(full);
  try {
    if (source !== undefined) {
      // copyFile keeps the source's permission bits, which already match `mode`.
      await copyFile(source, temp, constants.COPYFILE_FICLONE | constants.COPYFILE_EXCL);
    } else if (mode === SYMLINK) {
      symlinkSync(Buffer.from(await readBlob(repo, oid)).toString(), temp);
    } else {
      const data = await readBlob(repo, oid);
      const perm = permissions(mode);
      if (data.length > SYNC_WRITE_BYTES) await writeFile(temp, data, { mode: perm, flag: "wx" });
      else {
        // Written at its name, the file's stat data is final before close: fstat spares a path lookup.
        const stats = writeNewFileSync(temp, data, perm, fresh);
        if (stats) return stats;
      }
    }
    if (!fresh) renameOver(temp, full);
    return undefined;
  } catch (err) {
    if (!fresh) await rm(temp, { force: true });
    throw err;
  }
}

/** Creates `path` (it must not exist) holding `data`: open, write, close, without writeFileSync's truncate. */
function writeNewFileSync(path: string, data: Uint8Array, perm: number, wantStats: boolean): BigIntStats | undefined {
  const fd = openSync(path, "wx", perm);
  try {
    for (let done = 0; done < data.length; ) done += writeSync(fd, data, done);
    return wantStats ? fstatSync(fd, { bigint: true }) : undefined;
  } finally {
    closeSync(fd);
  }
}

function renameOver(temp: string, full: string): void {
  try {
    renameSync(temp, full);
  } catch (err) {
    // rename() cannot replace a directory (a tracked directory turning into a file): it is empty by now.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EISDIR" && code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
    rmdirSync(full);
    renameSync(temp, full);
  }
}

async function readBlob(repo: Repository, oid: string): Promise<Uint8Array> {
  return repo.objects.readAs(oid, "blob");
}

/** Removes directories left empty by deletions, deepest first, stopping at one that is not empty. */
async function pruneEmptyDirs(dir: string, removed: string[]): Promise<void> {
  const dirs = new Set(removed.flatMap(ancestors));
  const deepestFirst = [...dirs].sort((a, b) => b.split("/").length - a.split("/").length);
  for (const d of deepestFirst) {
    await rmdir(join(dir, d)).catch(ignore("ENOENT", "ENOTEMPTY", "EEXIST", "ENOTDIR"));
  }
}

/** With --force: whatever untracked thing sits where a tracked path goes is removed. */
async function clearObstacles(dir: string, path: string): Promise<void> {
  for (const parent of ancestors(path)) {
    const st = await lstat(join(dir, parent)).catch(() => undefined);
    if (st && !st.isDirectory()) await rm(join(dir, parent), { force: true });
  }
  const st = await lstat(join(dir, path)).catch(() => undefined);
  if (st?.isDirectory()) await rm(join(dir, path), { recursive: true, force: true });
}

function ignore(...codes: string[]) {
  return (err: NodeJS.ErrnoException) => {
    if (!err.code || !codes.includes(err.code)) throw err;
  };
}

/** Admits work while the bytes in flight stay under `limit`; one item alone is always admitted. */
function createByteBudget(limit: number) {
  let inFlight = 0;
  const waiting: Array<() => void> = [];
  return {
    async acquire(bytes: number): Promise<void> {
      while (inFlight > 0 && inFlight + bytes > limit) await new Promise<void>((resume) => waiting.push(resume));
      inFlight += bytes;
    },
    release(bytes: number): void {
      inFlight -= bytes;
      for (const resume of waiting.splice(0)) resume();
    },
  };
}
