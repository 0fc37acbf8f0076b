import { afterAll, describe, expect, test } from "bun:test";
import { chmod, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, unlink, utimes, lutimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { hashBlob } from "../../src/git/hash-blob.ts";
import {
  entryFromStats,
  parseIndex,
  readIndex,
  serializeIndex,
  statMatches,
  writeIndex,
  type IndexEntry,
} from "../../src/git/index-file.ts";

// Native git is used here only as the reference implementation; hooksd never runs it.
const gitEnv: Record<string, string> = { GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" };
for (const [key, value] of Object.entries(process.env)) {
  // A GIT_DIR/GIT_INDEX_FILE inherited from a hook would point git at the wrong repository.
  if (value !== undefined && !key.startsWith("GIT_")) gitEnv[key] = value;
}

function run(cwd: string, args: string[], stdin?: Uint8Array) {
  const cmd = ["git", "-c", "user.name=hooksd test", "-c", "user.email=test@example.com",
    "-c", "init.defaultBranch=main", "-c", "core.quotePath=false", ...args];
  const result = Bun.spawnSync({ cmd, cwd, env: gitEnv, stdin: stdin ?? "ignore" });
  return { exitCode: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

function git(cwd: string, ...args: string[]): string {
  const result = run(cwd, args);
  if (result.exitCode !== 0) throw new Error(`git ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

/** `git ls-files -s` as [mode, oid, stage, path] rows. */
function lsFiles(dir: string): string[][] {
  return git(dir, "ls-files", "-s", "-z")
    .split("\0")
    .filter(Boolean)
    .map((line) => {
      const [meta = "", path = ""] = line.split("\t");
      return [...meta.split(" "), path];
    });
}

function rows(entries: IndexEntry[]): string[][] {
  return entries.map((e) => [e.mode.toString(8), e.oid, String((e.flags >> 12) & 3), e.path]);
}

function status(dir: string): string[] {
  return git(dir, "status", "--porcelain", "-z").split("\0").filter(Boolean);
}

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "hooksd-index-"));
  tempDirs.push(dir);
  return dir;
}

// Files of the fixture tree: nested dirs, an executable, an empty file, UTF-8 names whose
// UTF-8 byte order differs from JS's UTF-16 order (U+FB01 sorts before U+1F600 as bytes only).
const FILES: Record<string, string> = {
  "README.md": "# demo\n",
  "a-b.txt": "dash\n",
  "a.txt": "dot\n",
  "a/b.txt": "slash\n",
  "src/app/main.ts": "console.log('hi');\n",
  "src/app/util/deep.ts": "export const x = 1;\n",
  "bin/run.sh": "#!/bin/sh\necho run\n",
  "empty.txt": "",
  "docs/café.md": "crème brûlée\n",
  "docs/\u{fb01}le.txt": "ligature\n",
  "docs/\u{1f600}.txt": "smile\n",
};
const EXECUTABLE = "bin/run.sh";
const SYMLINK = ["link-to-readme", "README.md"] as const;
// Old mtimes keep entries out of git's "racily clean" window (mtime >= index mtime), where git
// would re-hash the content and so hide wrong stat data from our assertions.
const PAST = new Date("2021-03-04T05:06:07.123Z");

async function writeTree(dir: string): Promise<void> {
  for (const [path, content] of Object.entries(FILES)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
    await utimes(join(dir, path), PAST, PAST);
  }
  await chmod(join(dir, EXECUTABLE), 0o755);
  await symlink(SYMLINK[1], join(dir, SYMLINK[0]));
  await lutimes(join(dir, SYMLINK[0]), PAST, PAST);
}

/** A repository with the fixture tree committed by native git. */
async function makeRepo(): Promise<string> {
  const dir = await tempDir();
  git(dir, "init", "-q");
  await writeTree(dir);
  git(dir, "add", "-A");
  git(dir, "commit", "-q", "-m", "fixture");
  return dir;
}

function version(index: Uint8Array): number {
  return new DataView(index.buffer, index.byteOffset).getUint32(4);
}

describe("parseIndex", () => {
  test("it reads an index written by native git with the same paths, oids, modes and stages as git ls-files -s", async () => {
    const dir = await makeRepo();
    const entries = await readIndex(join(dir, ".git"));
    expect(version(await readFile(join(dir, ".git/index")))).toBe(2);
    expect(rows(entries)).toEqual(lsFiles(dir));
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect(byPath.get(EXECUTABLE)?.mode).toBe(0o100755);
    expect(byPath.get(SYMLINK[0])?.mode).toBe(0o120000);
    expect(byPath.get("README.md")?.mode).toBe(0o100644);
    expect(byPath.get("docs/café.md")?.oid).toBe(hashBlob(new TextEncoder().encode(FILES["docs/café.md"])));
    expect(byPath.get("README.md")?.mtimeSeconds).toBe(Math.floor(PAST.getTime() / 1000));
  });

  test("it reads a version 4 index with prefix-compressed paths", async () => {
    const dir = await makeRepo();
    git(dir, "update-index", "--index-version", "4");
    expect(version(await readFile(join(dir, ".git/index")))).toBe(4);
    expect(rows(await readIndex(join(dir, ".git")))).toEqual(lsFiles(dir));
  });

  test("it reads a version 3 index with skip-worktree and intent-to-add entries and keeps those flags when written back", async () => {
    const dir = await makeRepo();
    git(dir, "update-index", "--skip-worktree", "README.md");
    await writeFile(join(dir, "new.txt"), "not yet added\n");
    git(dir, "add", "-N", "new.txt");
    const before = await readFile(join(dir, ".git/index"));
    expect(version(before)).toBe(3);

    const entries = parseIndex(before);
    expect(rows(entries)).toEqual(lsFiles(dir));
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect(byPath.get("README.md")!.flags & 0x40000000).toBeTruthy();
    expect(byPath.get("new.txt")!.flags & 0x20000000).toBeTruthy();
    expect(byPath.get("a.txt")!.flags & 0x60000000).toBe(0);

    const tagsBefore = git(dir, "ls-files", "-v");
    await writeIndex(join(dir, ".git"), entries);
    expect(version(await readFile(join(dir, ".git/index")))).toBe(3);
    expect(git(dir, "ls-files", "-v")).toBe(tagsBefore);
    expect(lsFiles(dir)).toEqual(rows(entries));
  });

  test("a corrupted checksum, a truncated file, a bad signature and an unknown version all throw", async () => {
    const dir = await makeRepo();
    const good = new Uint8Array(await readFile(join(dir, ".git/index")));
    expect(parseIndex(good).length).toBeGreaterThan(0);

    const badSum = good.slice();
    badSum[badSum.length - 1]! ^= 0xff;
    expect(() => parseIndex(badSum)).toThrow(/checksum/);
    expect(() => parseIndex(good.slice(0, good.length - 7))).toThrow(/checksum/);
    expect(() => parseIndex(good.slice(0, 20))).toThrow(/too short|checksum/);

    // Valid checksums over broken content: the structural checks must catch these too.
    const reseal = (body: Uint8Array) => {
      const out = new Uint8Array(body.length + 20);
      out.set(body);
      out.set(new Bun.CryptoHasher("sha1").update(body).digest(), body.length);
      return out;
    };
    const body = good.subarray(0, good.length - 20);
    const badSig = body.slice();
    badSig[0] = 0x58;
    expect(() => parseIndex(reseal(badSig))).toThrow(/signature/);
    const v5 = body.slice();
    v5[7] = 5;
    expect(() => parseIndex(reseal(v5))).toThrow(/version 5/);
    expect(() => parseIndex(reseal(body.slice(0, 12 + 40)))).toThrow(/past the end/);
  });
});

describe("serializeIndex", () => {
  test("serialize(parse(index)) is read back by native git unchanged, with a clean status and valid stat data", async () => {
    const dir = await makeRepo();
    const lsBefore = lsFiles(dir);
    const entries = await readIndex(join(dir, ".git"));
    await writeIndex(join(dir, ".git"), entries);

    expect(lsFiles(dir)).toEqual(lsBefore);
    // diff-files first: it trusts the index as written, while status refreshes and rewrites it.
    expect(run(dir, ["diff-files", "--quiet"]).exitCode).toBe(0);
    expect(status(dir)).toEqual([]);
    expect(await readFile(join(dir, ".git/index.lock")).catch(() => null)).toBeNull();

    // Control: git really compares our stat data (a wrong mtime shows up as a stat-dirty file).
    const wrong = entries.map((e) => (e.path === "a.txt" ? { ...e, mtimeSeconds: e.mtimeSeconds - 10 } : e));
    await writeIndex(join(dir, ".git"), wrong);
    expect(git(dir, "diff-files", "--name-only")).toBe("a.txt\n");
  });

  test("entries are ordered by UTF-8 bytes then stage, and names of 0xFFF bytes or more round-trip", () => {
    const oid = "0123456789abcdef0123456789abcdef01234567";
    const entry = (path: string, stage = 0): IndexEntry => ({
      path, oid, mode: 0o100644, ctimeSeconds: 1, ctimeNanoseconds: 2, mtimeSeconds: 3, mtimeNanoseconds: 4,
      dev: 5, ino: 6, uid: 7, gid: 8, size: 9, flags: stage << 12,
    });
    const long = "d/".repeat(1000) + "f"; // 2001 bytes, name length field saturates at 0xFFF
    const longer = "x".repeat(5000);
    const input = [entry("\u{1f600}"), entry("a/b"), entry("a.b"), entry("m", 3), entry("a-b"), entry("m", 1),
      entry("\u{fb01}"), entry(long), entry(longer)];
    const parsed = parseIndex(serializeIndex(input));
    expect(parsed.map((e) => [e.path, (e.flags >> 12) & 3])).toEqual([
      ["a-b", 0], ["a.b", 0], ["a/b", 0], [long, 0], ["m", 1], ["m", 3], ["x".repeat(5000), 0], ["\u{fb01}", 0], ["\u{1f600}", 0],
    ]);
    expect(parsed.find((e) => e.path === longer)!.flags & 0xfff).toBe(0xfff);
    expect(parsed[0]).toEqual({ ...entry("a-b"), flags: 3 });
  });

  test("an index written from scratch with entryFromStats and hashBlob, without git add, gives a clean git status", async () => {
    const dir = await makeRepo();
    const lsBefore = lsFiles(dir);
    // What a deploy does: the work tree is rewritten and the index rebuilt by hooksd alone.
    await rm(join(dir, ".git/index"));
    for (const path of [...Object.keys(FILES), SYMLINK[0]]) await rm(join(dir, path));
    await writeTree(dir);

    const entries = await Promise.all([...Object.keys(FILES), SYMLINK[0]].map((path) => entryFor(dir, path)));
    await writeIndex(join(dir, ".git"), entries);
    expect(lsFiles(dir)).toEqual(lsBefore);
    // diff-files first: it trusts the index as written, while status refreshes and rewrites it.
    expect(run(dir, ["diff-files", "--quiet"]).exitCode).toBe(0);
    expect(status(dir)).toEqual([]);
  });

  test("an index written from scratch that leaves out a removed file makes git report exactly that deletion", async () => {
    const dir = await makeRepo();
    const removed = "src/app/main.ts";
    await rm(join(dir, ".git/index"));
    await unlink(join(dir, removed));
    const paths = [...Object.keys(FILES), SYMLINK[0]].filter((p) => p !== removed);
    await writeIndex(join(dir, ".git"), await Promise.all(paths.map((path) => entryFor(dir, path))));

    expect(run(dir, ["diff-files", "--quiet"]).exitCode).toBe(0);
    expect(status(dir)).toEqual([`D  ${removed}`]);
    expect(lsFiles(dir).map((row) => row[3])).not.toContain(removed);
  });
});

async function entryFor(dir: string, path: string): Promise<IndexEntry> {
  const full = join(dir, path);
  const stats = await lstat(full, { bigint: true });
  if (stats.isSymbolicLink()) {
    return entryFromStats(path, hashBlob(await readlink(full, { encoding: "buffer" })), 0o120000, stats);
  }
  const mode = Number(stats.mode) & 0o100 ? 0o100755 : 0o100644;
  return entryFromStats(path, hashBlob(await readFile(full)), mode, stats);
}

describe("statMatches", () => {
  test("it is true right after lstat and false once the size, mtime, exec bit or file type change", async () => {
    const dir = await tempDir();
    const file = join(dir, "f.txt");
    await writeFile(file, "one\n");
    await utimes(file, PAST, PAST);
    const entry = entryFromStats("f.txt", hashBlob(new TextEncoder().encode("one\n")), 0o100644, await lstat(file, { bigint: true }));
    expect(statMatches(entry, await lstat(file, { bigint: true }))).toBe(true);
    expect(statMatches(entry, await lstat(file))).toBe(true); // plain Stats work too

    await writeFile(file, "one more\n");
    await utimes(file, PAST, PAST);
    expect(statMatches(entry, await lstat(file, { bigint: true }))).toBe(false);

    await writeFile(file, "one\n"); // same size, new mtime
    expect(statMatches(entry, await lstat(file, { bigint: true }))).toBe(false);
    const fresh = entryFromStats("f.txt", entry.oid, 0o100644, await lstat(file, { bigint: true }));
    expect(statMatches(fresh, await lstat(file, { bigint: true }))).toBe(true);
    await utimes(file, new Date(PAST.getTime() + 5000), new Date(PAST.getTime() + 5000));
    expect(statMatches(fresh, await lstat(file, { bigint: true }))).toBe(false);

    await utimes(file, PAST, PAST);
    const again = entryFromStats("f.txt", entry.oid, 0o100644, await lstat(file, { bigint: true }));
    await chmod(file, 0o755);
    const afterChmod = await lstat(file, { bigint: true });
    expect(statMatches(again, afterChmod)).toBe(false);
    expect(statMatches({ ...entryFromStats("f.txt", entry.oid, 0o100755, afterChmod) }, afterChmod)).toBe(true);
    expect(statMatches({ ...again, mode: 0o120000 }, afterChmod)).toBe(false);
    // git's "racily smudged" entry: size 0 for a non-empty blob never matches.
    expect(statMatches({ ...entryFromStats("f.txt", entry.oid, 0o100755, afterChmod), size: 0 }, afterChmod)).toBe(false);
  });
});

describe("writeIndex", () => {
  test("it refuses when index.lock exists, names the lock, and leaves both files untouched", async () => {
    const dir = await makeRepo();
    const gitdir = join(dir, ".git");
    const before = await readFile(join(gitdir, "index"));
    await writeFile(join(gitdir, "index.lock"), "someone else's");
    const entries = parseIndex(before).slice(1);

    await expect(writeIndex(gitdir, entries)).rejects.toThrow(`Unable to create '${gitdir}/index.lock': File exists`);
    expect(await readFile(join(gitdir, "index"))).toEqual(before);
    expect(await readFile(join(gitdir, "index.lock"), "utf8")).toBe("someone else's");
  });

  test("readIndex sees every change native git makes after hooksd wrote the index, and callers cannot change what it remembers", async () => {
    const dir = await makeRepo();
    const gitdir = join(dir, ".git");
    const ours = await readIndex(gitdir);
    await writeIndex(gitdir, ours);
    const remembered = await readIndex(gitdir);
    remembered.length = 0;
    expect(rows(await readIndex(gitdir))).toEqual(lsFiles(dir));

    // Written by git since: a new file staged, one removed from the index.
    await writeFile(join(dir, "added.txt"), "new\n");
    git(dir, "add", "added.txt");
    git(dir, "rm", "-q", "--cached", "a.txt");
    const after = await readIndex(gitdir);
    expect(rows(after)).toEqual(lsFiles(dir));
    expect(after.map((e) => e.path)).toContain("added.txt");
    expect(after.map((e) => e.path)).not.toContain("a.txt");
  });

  test("an index whose entries were already in git's order is written exactly as when they had to be sorted", () => {
    const entry = (path: string): IndexEntry => ({
      path, oid: "0123456789abcdef0123456789abcdef01234567", mode: 0o100644, ctimeSeconds: 1, ctimeNanoseconds: 2,
      mtimeSeconds: 3, mtimeNanoseconds: 4, dev: 5, ino: 6, uid: 7, gid: 8, size: 9, flags: 0,
    });
    const sorted = ["a-b", "a.b", "a/b", "b", "\u{fb01}", "\u{1f600}"].map(entry);
    const shuffled = [sorted[3]!, sorted[5]!, sorted[0]!, sorted[4]!, sorted[2]!, sorted[1]!];
    expect(serializeIndex(sorted)).toEqual(serializeIndex(shuffled));
    expect(parseIndex(serializeIndex(shuffled)).map((e) => e.path)).toEqual(sorted.map((e) => e.path));
  });

  test("readIndex returns no entries when the repository has no index yet", async () => {
    const dir = await tempDir();
    git(dir, "init", "-q");
    expect(await readIndex(join(dir, ".git"))).toEqual([]);
  });
});

describe("hashBlob", () => {
  test("it equals git hash-object for empty, text, binary and large contents", async () => {
    const dir = await tempDir();
    const large = new Uint8Array(300_000).map((_, i) => (i * 7919) & 0xff);
    const samples = [new Uint8Array(0), new TextEncoder().encode("hello\n"), new Uint8Array([0, 1, 2, 255, 0, 10]), large];
    for (const content of samples) {
      const result = run(dir, ["hash-object", "--stdin"], content);
      expect(result.exitCode).toBe(0);
      expect(hashBlob(content)).toBe(result.stdout.trim());
    }
  });
});
