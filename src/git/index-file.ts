/**
 * Reader/writer for git's index file (`.git/index`), so that a checkout updated
 * by hooksd looks clean to a native `git status` without a full rehash, and so
 * hooksd can spot locally modified tracked files from stat data alone.
 *
 * Format: Documentation/gitformat-index.txt in git.git. Only SHA-1 repositories.
 */
import { createHash } from "node:crypto";
import type { BigIntStats, Stats } from "node:fs";
import { open, readFile, rename, stat, unlink } from "node:fs/promises";

/** Immutable: an entry's encoding is cached by identity (see `encodings`); change one by making a new object. */
export interface IndexEntry {
  /** Slash-separated, relative to the work tree. */
  readonly path: string;
  /** 40-hex sha1 of the blob (or of the commit, for gitlinks). */
  readonly oid: string;
  /** 0o100644, 0o100755, 0o120000 or 0o160000. */
  readonly mode: number;
  readonly ctimeSeconds: number;
  readonly ctimeNanoseconds: number;
  readonly mtimeSeconds: number;
  readonly mtimeNanoseconds: number;
  readonly dev: number;
  readonly ino: number;
  readonly uid: number;
  readonly gid: number;
  /** Truncated to 32 bits like git. */
  readonly size: number;
  /**
   * The 16-bit on-disk flags (assume-valid 0x8000, stage = (flags >> 12) & 3,
   * name length in the low 12 bits), plus the v3 extended flags shifted up by
   * 16 bits, which is the same layout git uses in memory:
   * skip-worktree = 0x40000000, intent-to-add = 0x20000000.
   */
  readonly flags: number;
}

const SIGNATURE = 0x44495243; // "DIRC"
const HEADER_SIZE = 12;
const HASH_SIZE = 20;
const FIXED_SIZE = 62; // stat fields (40) + oid (20) + flags (2)
const NAME_MASK = 0x0fff;
const ASSUME_VALID = 0x8000;
const EXTENDED = 0x4000;
const STAGE_MASK = 0x3000;
const EXTENDED_FLAGS_MASK = 0x6000; // skip-worktree | intent-to-add; git rejects any other bit
const EMPTY_BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
const S_IFGITLINK = 0o160000;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

function sha1(data: Uint8Array): Uint8Array {
  return createHash("sha1").update(data).digest();
}

function corrupt(why: string): Error {
  return new Error(`git index: ${why}`);
}

export function parseIndex(buf: Uint8Array): IndexEntry[] {
  if (buf.length < HEADER_SIZE + HASH_SIZE) throw corrupt(`file too short (${buf.length} bytes)`);
  // Verify the trailer first: it catches truncation and bit rot before we trust any offsets.
  const body = buf.subarray(0, buf.length - HASH_SIZE);
  if (Buffer.compare(sha1(body), buf.subarray(body.length)) !== 0) {
    throw corrupt("bad trailing SHA-1 checksum (file corrupted or truncated)");
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (view.getUint32(0) !== SIGNATURE) throw corrupt("bad signature (expected DIRC)");
  const version = view.getUint32(4);
  if (version < 2 || version > 4) throw corrupt(`unsupported version ${version}`);
  const count = view.getUint32(8);

  const need = (end: number) => {
    if (end > body.length) throw corrupt(`entry data runs past the end of the file`);
  };
  const entries: IndexEntry[] = [];
  let prevPath: Uint8Array = new Uint8Array(0); // v4 paths are stored relative to the previous one
  let pos = HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    const start = pos;
    need(start + FIXED_SIZE);
    const u32 = (field: number) => view.getUint32(start + 4 * field);
    let flags = view.getUint16(start + 60);
    pos = start + FIXED_SIZE;
    if (flags & EXTENDED) {
      if (version < 3) throw corrupt(`extended flags in a version ${version} index`);
      need(pos + 2);
      const extended = view.getUint16(pos);
      if (extended & ~EXTENDED_FLAGS_MASK) throw corrupt(`unknown extended flags 0x${extended.toString(16)}`);
      flags += extended * 0x10000; // multiply, not <<, to stay a positive number
      pos += 2;
    }

    let pathBytes: Uint8Array;
    if (version === 4) {
      // varint "drop N bytes from the end of the previous path", then a NUL-terminated suffix; no padding.
      const [strip, afterVarint] = readVarint(body, pos);
      if (strip > prevPath.length) throw corrupt(`path prefix strip ${strip} longer than previous path`);
      const nul = body.indexOf(0, afterVarint);
      if (nul < 0) throw corrupt("unterminated path");
      pathBytes = concat(prevPath.subarray(0, prevPath.length - strip), body.subarray(afterVarint, nul));
      pos = nul + 1;
    } else {
      // The name length in the flags is only exact below 0xFFF; longer names are found by their NUL.
      const nameLen = flags & NAME_MASK;
      const nul = nameLen < NAME_MASK ? pos + nameLen : body.indexOf(0, pos + NAME_MASK);
      if (nul < 0 || body[nul] !== 0) throw corrupt("unterminated path");
      pathBytes = body.subarray(pos, nul);
      // 1 to 8 NULs pad the entry to a multiple of 8 bytes.
      pos = start + ((nul - start + 8) & ~7);
      need(pos);
    }
    prevPath = pathBytes;

    let path: string;
    try {
      path = utf8Strict.decode(pathBytes);
    } catch {
      throw corrupt(`entry ${i} has a path that is not valid UTF-8`);
    }
    const entry: IndexEntry = {
      path,
      oid: Buffer.from(body.subarray(start + 40, start + 60)).toString("hex"),
      mode: u32(6),
      ctimeSeconds: u32(0),
      ctimeNanoseconds: u32(1),
      mtimeSeconds: u32(2),
      mtimeNanoseconds: u32(3),
      dev: u32(4),
      ino: u32(5),
      uid: u32(7),
      gid: u32(8),
      size: u32(9),
      flags,
    };
    // A v2/v3 entry is stored exactly as serializeIndex would write it; v4 compresses paths.
    if (version !== 4) encodings.set(entry, body.subarray(start, pos));
    entries.push(entry);
  }

  // Extensions (TREE, REUC, UNTR, EOIE, ...) are caches or history we do not need. Ones whose
  // name starts with a capital letter are optional; lowercase ones ("link" split index,
  // "sdir" sparse index) change what the entries mean, so git refuses to go on without them.
  while (pos < body.length) {
    need(pos + 8);
    const name = String.fromCharCode(...body.subarray(pos, pos + 4));
    const first = name.charCodeAt(0);
    if (first < 0x41 || first > 0x5a) throw corrupt(`unsupported required extension "${name}"`);
    pos += 8 + view.getUint32(pos + 4);
    need(pos);
  }
  return entries;
}

/** git's varint.c offset encoding (the same as in ofs-delta pack entries). */
function readVarint(buf: Uint8Array, pos: number): [value: number, next: number] {
  const byte = () => {
    const b = buf[pos++];
    if (b === undefined) throw corrupt("truncated varint");
    return b;
  };
  let c = byte();
  let value = c & 0x7f;
  while (c & 0x80) {
    c = byte();
    value = (value + 1) * 128 + (c & 0x7f);
    if (value > 0xffffffff) throw corrupt("varint overflow");
  }
  return [value, pos];
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Each entry's on-disk bytes, by identity: a deploy rewrites the whole index
 * but changes few entries, so the rest are copied rather than encoded again.
 * Safe because entries are immutable.
 */
const encodings = new WeakMap<IndexEntry, Uint8Array>();

/**
 * Writes version 2, or version 3 when some entry carries extended flags
 * (skip-worktree, intent-to-add), exactly as git does: dropping those flags
 * would silently change what git thinks is tracked.
 */
export function serializeIndex(entries: IndexEntry[]): Uint8Array {
  const sorted = sortLikeGit(entries);
  encodeNew(sorted.filter((entry) => !encodings.has(entry)));
  const encoded = sorted.map((entry) => encodings.get(entry)!);
  const total = HEADER_SIZE + encoded.reduce((n, bytes) => n + bytes.length, 0) + HASH_SIZE;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, SIGNATURE);
  view.setUint32(4, sorted.some((entry) => extendedFlags(entry) !== 0) ? 3 : 2);
  view.setUint32(8, sorted.length);
  let pos = HEADER_SIZE;
  for (const bytes of encoded) {
    out.set(bytes, pos);
    pos += bytes.length;
  }
  out.set(sha1(out.subarray(0, pos)), pos);
  return out;
}

/**
 * Encodes entries not encoded before into one buffer, each cached as its
 * slice. One buffer, not one per entry: JSC makes a small typed array's
 * buffer slowly, and 50k of them were most of serializing a first deploy's
 * index (~180 ms → ~50 ms). A slice keeps its whole buffer alive; at worst
 * that is one index's worth of bytes held by an entry that never changes.
 */
function encodeNew(entries: IndexEntry[]): void {
  if (entries.length === 0) return;
  const sizes = entries.map((e) => {
    if (!/^[0-9a-f]{40}$/.test(e.oid)) throw new Error(`git index: bad oid "${e.oid}" for ${e.path}`);
    if (e.path.length === 0 || e.path.includes("\0")) throw new Error(`git index: bad path ${JSON.stringify(e.path)}`);
    return (FIXED_SIZE + (extendedFlags(e) ? 2 : 0) + Buffer.byteLength(e.path) + 8) & ~7;
  });
  const slab = Buffer.alloc(sizes.reduce((n, size) => n + size, 0)); // zero-filled: the NUL padding is there
  const view = new DataView(slab.buffer, slab.byteOffset, slab.byteLength);
  let at = 0;
  entries.forEach((e, i) => {
    encodeEntryAt(slab, view, at, e);
    encodings.set(e, slab.subarray(at, at + sizes[i]!));
    at += sizes[i]!;
  });
}

function encodeEntryAt(out: Buffer, view: DataView, at: number, e: IndexEntry): void {
  const extended = extendedFlags(e);
  const nameAt = at + FIXED_SIZE + (extended ? 2 : 0);
  const nameLength = out.write(e.path, nameAt, "utf8");
  // setUint32 wraps modulo 2^32, which is the truncation git applies to these fields.
  view.setUint32(at, e.ctimeSeconds);
  view.setUint32(at + 4, e.ctimeNanoseconds);
  view.setUint32(at + 8, e.mtimeSeconds);
  view.setUint32(at + 12, e.mtimeNanoseconds);
  view.setUint32(at + 16, e.dev);
  view.setUint32(at + 20, e.ino);
  view.setUint32(at + 24, e.mode);
  view.setUint32(at + 28, e.uid);
  view.setUint32(at + 32, e.gid);
  view.setUint32(at + 36, e.size);
  for (let i = 0; i < 20; i++) out[at + 40 + i] = (hexDigit(e.oid.charCodeAt(2 * i)) << 4) | hexDigit(e.oid.charCodeAt(2 * i + 1));
  view.setUint16(at + 60, (e.flags & (ASSUME_VALID | STAGE_MASK)) | (extended ? EXTENDED : 0) | Math.min(nameLength, NAME_MASK));
  if (extended) view.setUint16(at + FIXED_SIZE, extended);
}

/** The value of a lowercase hex digit (the id was checked against /^[0-9a-f]{40}$/). */
function hexDigit(code: number): number {
  return code <= 0x39 ? code - 0x30 : code - 0x57;
}

function extendedFlags(entry: IndexEntry): number {
  return Math.floor(entry.flags / 0x10000) & EXTENDED_FLAGS_MASK;
}

/**
 * git's order: memcmp of the UTF-8 bytes, then stage. JS compares UTF-16 code
 * units, which agrees with UTF-8 byte order below U+D800: only paths with
 * characters from there up need their bytes compared.
 */
function sortLikeGit(entries: IndexEntry[]): IndexEntry[] {
  const byString = !entries.some((e) => /[\uD800-\uFFFF]/.test(e.path));
  const compareNames = byString
    ? (a: IndexEntry, b: IndexEntry) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
    : (a: IndexEntry, b: IndexEntry) => Buffer.compare(utf8.encode(a.path), utf8.encode(b.path));
  const compare = (a: IndexEntry, b: IndexEntry) => compareNames(a, b) || stage(a) - stage(b);
  // A deploy that only modified files keeps the order it read: checking costs far less than sorting.
  if (entries.every((entry, i) => i === 0 || compare(entries[i - 1]!, entry) < 0)) return entries;
  return [...entries].sort(compare);
}

function stage(entry: IndexEntry): number {
  return (entry.flags >> 12) & 3;
}

/**
 * The entries of the index each repository had when this process last read or
 * wrote it, and which file that was: a daemon then skips reading and parsing
 * the whole index on every deploy. Any write to the index (by git, or by
 * another process) renames a new file over it, so its identity changes.
 */
const lastIndex = new Map<string, { identity: string; entries: readonly IndexEntry[] }>();

async function indexIdentity(path: string): Promise<string | undefined> {
  const st = await stat(path, { bigint: true }).catch(() => undefined);
  return st && `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

export async function readIndex(gitdir: string): Promise<IndexEntry[]> {
  const path = `${gitdir}/index`;
  const identity = await indexIdentity(path);
  const known = lastIndex.get(gitdir);
  if (identity !== undefined && known?.identity === identity) return [...known.entries];
  let buf: Uint8Array;
  try {
    buf = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return []; // fresh repository
    throw err;
  }
  const entries = parseIndex(buf);
  // Identity taken before the read: a write racing with the read makes it differ next time.
  if (identity !== undefined) lastIndex.set(gitdir, { identity, entries });
  return [...entries];
}

/**
 * Same protocol as git's lockfile.c: create `index.lock` exclusively (so we never
 * race a concurrent `git` or hooksd), write and fsync it, then rename it over
 * `index`, so readers see either the old or the new index, never a torn one.
 */
export async function writeIndex(gitdir: string, entries: IndexEntry[]): Promise<void> {
  const data = serializeIndex(entries); // before taking the lock: bad input must not leave one behind
  const indexPath = `${gitdir}/index`;
  const lockPath = `${indexPath}.lock`;
  let handle;
  try {
    handle = await open(lockPath, "wx", 0o666);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      // Not ours, so we leave it alone (same wording as git).
      throw new Error(
        `Unable to create '${lockPath}': File exists. Another git process seems to be running in this repository; ` +
          "if none is, the lock is stale and may be removed.",
        { cause: err },
      );
    }
    throw err;
  }
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(lockPath, indexPath);
    const identity = await indexIdentity(indexPath);
    if (identity !== undefined) lastIndex.set(gitdir, { identity, entries: [...entries] });
  } catch (err) {
    await unlink(lockPath).catch(() => {}); // it is ours: do not leave a stale lock behind
    throw err;
  }
}

/**
 * Removes `index.lock` if it was made at or after `since`: the start of a
 * deploy whose process is known to have died (start-up recovery redoes it).
 * A process killed between creating the lock and renaming it leaves it
 * behind, and git's rule — never take over a lock — would then refuse every
 * later deploy. Only a lock from the dead deploy's time goes; an older one is
 * someone else's and stays, with writeIndex's error naming it.
 */
export async function removeIndexLockSince(gitdir: string, since: Date): Promise<void> {
  const lockPath = `${gitdir}/index.lock`;
  const st = await stat(lockPath).catch(() => undefined);
  if (st && st.mtimeMs >= since.getTime()) await unlink(lockPath).catch(() => {});
}

type AnyStats = Stats | BigIntStats;

/** Low 32 bits, as git stores dev/ino/uid/gid/size/seconds. */
function u32(value: number | bigint): number {
  return typeof value === "bigint" ? Number(BigInt.asUintN(32, value)) : value >>> 0;
}

/** git's munge_st_size: a non-empty file whose size is a multiple of 4 GiB must not look like 0 (racily smudged). */
function indexSize(size: number | bigint): number {
  const low = u32(size);
  return low === 0 && Number(size) !== 0 ? 0x80000000 : low;
}

/** Seconds and nanoseconds; exact with BigIntStats, approximate (sub-microsecond) with Stats' float milliseconds. */
function timeOf(stats: AnyStats, which: "mtime" | "ctime"): [seconds: number, nanoseconds: number] {
  if ("mtimeNs" in stats) {
    const ns = which === "mtime" ? stats.mtimeNs : stats.ctimeNs;
    return [u32(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
  }
  const ms = which === "mtime" ? stats.mtimeMs : stats.ctimeMs;
  const seconds = Math.floor(ms / 1000);
  return [u32(seconds), Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1e6))];
}

/** Build an entry from lstat results (pass `{ bigint: true }` stats for exact nanoseconds and 64-bit inodes). */
export function entryFromStats(path: string, oid: string, mode: number, stats: AnyStats): IndexEntry {
  const [ctimeSeconds, ctimeNanoseconds] = timeOf(stats, "ctime");
  const [mtimeSeconds, mtimeNanoseconds] = timeOf(stats, "mtime");
  return {
    path,
    oid,
    mode,
    ctimeSeconds,
    ctimeNanoseconds,
    mtimeSeconds,
    mtimeNanoseconds,
    dev: u32(stats.dev),
    ino: u32(stats.ino),
    uid: u32(stats.uid),
    gid: u32(stats.gid),
    size: indexSize(stats.size),
    flags: Math.min(utf8.encode(path).length, NAME_MASK),
  };
}

/**
 * True when lstat data says the file is unchanged since the entry was recorded,
 * following git's ce_match_stat_basic() + match_stat_data() with default config
 * and a default build:
 *  - type must match; for regular files only the owner-exec bit counts (core.fileMode=true);
 *  - mtime and ctime are compared in whole SECONDS only: nanoseconds are compared only
 *    by git builds with USE_NSEC, which is not the default (Debian's git ignores them);
 *    ctime is compared because core.trustCtime defaults to true;
 *  - uid, gid, ino (low 32 bits) and size are compared (core.checkStat=default);
 *    dev is not (only with USE_STDEV, because it is unstable on network filesystems);
 *  - size 0 with a non-empty blob is git's "racily smudged" marker: always changed.
 * Gitlinks only need a directory here; git then compares the submodule's HEAD, which is
 * not a stat question.
 *
 * Racy git: a file rewritten in the same second it was recorded keeps equal stat data.
 * Git guards against that by re-hashing entries whose mtime is >= the index file's mtime;
 * callers that need certainty must do the same (this function cannot see the index mtime).
 */
export function statMatches(entry: IndexEntry, stats: AnyStats): boolean {
  const mode = Number(stats.mode);
  switch (entry.mode & S_IFMT) {
    case S_IFREG:
      if ((mode & S_IFMT) !== S_IFREG || (entry.mode ^ mode) & 0o100) return false;
      break;
    case S_IFLNK:
      if ((mode & S_IFMT) !== S_IFLNK) return false;
      break;
    case S_IFGITLINK:
      return (mode & S_IFMT) === S_IFDIR;
    default:
      return false;
  }
  const [mtimeSeconds] = timeOf(stats, "mtime");
  const [ctimeSeconds] = timeOf(stats, "ctime");
  return (
    entry.mtimeSeconds === mtimeSeconds &&
    entry.ctimeSeconds === ctimeSeconds &&
    entry.uid === u32(stats.uid) &&
    entry.gid === u32(stats.gid) &&
    entry.ino === u32(stats.ino) &&
    entry.size === indexSize(stats.size) &&
    !(entry.size === 0 && entry.oid !== EMPTY_BLOB)
  );
}
