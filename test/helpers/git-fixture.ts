/**
 * Builds test repositories with the native git CLI. Tests only: the daemon
 * itself never runs the git binary.
 */
import { expect } from "bun:test";
import { chmod, lstat, mkdir, mkdtemp, readdir, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";

/**
 * Built from scratch rather than from process.env so that the developer's
 * config, credential helpers, GIT_DIR from a surrounding hook, etc. cannot
 * leak into the tests.
 */
const gitEnv: Record<string, string> = {
  PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
  HOME: tmpdir(),
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  // A missing credential must fail the command, not hang on a prompt.
  GIT_TERMINAL_PROMPT: "0",
  GIT_AUTHOR_NAME: "Hooksd Test",
  GIT_AUTHOR_EMAIL: "test@hooksd.invalid",
  GIT_COMMITTER_NAME: "Hooksd Test",
  GIT_COMMITTER_EMAIL: "test@hooksd.invalid",
  // Stable, English messages for assertions on stderr.
  LC_ALL: "C",
};

const gitFlags = ["init.defaultBranch=main", "advice.detachedHead=false", "core.autocrlf=false",
  // Throwaway repos need no durability, and fsync can stall for seconds on a
  // shared disk that other test runs keep busy.
  "core.fsync=none",
].flatMap((setting) => ["-c", setting]);

export interface GitRunOptions {
  /** Extra environment, e.g. { GIT_TRACE_CURL: "1" }. */
  env?: Record<string, string>;
  stdin?: string | Uint8Array;
}

/** Runs git and returns raw stdout bytes; throws with stderr on a non-zero exit. */
export async function runGit(
  cwd: string,
  args: string[],
  options: GitRunOptions = {},
): Promise<{ stdout: Uint8Array; stderr: string }> {
  const proc = Bun.spawn(["git", ...gitFlags, ...args], {
    cwd,
    env: { ...gitEnv, ...options.env },
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, exitCode] = await Promise.all([proc.stdout.bytes(), proc.stderr.text(), proc.exited]);
  if (exitCode !== 0) {
    throw new Error(`git ${args.join(" ")} (in ${cwd}) exited with ${exitCode}:\n${stderr}`);
  }
  return { stdout, stderr };
}

/** Runs git and returns stdout as text without its final newline. */
export async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await runGit(cwd, args);
  return new TextDecoder().decode(stdout).replace(/\r?\n$/, "");
}

const tempDirs = new Set<string>();

/** A fresh directory under os.tmpdir(); removed by removeTempDirs(). */
export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `hooksd-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

/** Removes every directory made by makeTempDir() or createRemote() so far; use in afterAll/afterEach. */
export async function removeTempDirs(): Promise<void> {
  const dirs = [...tempDirs];
  tempDirs.clear();
  // One at a time: a work root can sit inside another temp dir, and two
  // concurrent recursive rm's of nested trees can leave the outer one behind.
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
}

/**
 * Creates the bare repository `root/name` (accepting pushes over HTTP) and a
 * work clone of it outside root, at `${root}-work/<name without .git>`, so
 * that a git server serving root only sees bare repositories. The clone's
 * origin is the bare repo by path, so push() needs no server.
 */
export async function createRemote(root: string, name: string): Promise<{ bare: string; work: string }> {
  const bare = join(root, name);
  const workRoot = `${root}-work`;
  const work = join(workRoot, name.replace(/\.git$/, ""));
  tempDirs.add(workRoot);
  await mkdir(root, { recursive: true });
  await git(root, "init", "--quiet", "--bare", bare);
  await git(bare, "config", "http.receivepack", "true");
  await mkdir(dirname(work), { recursive: true });
  await git(workRoot, "clone", "--quiet", bare, work);
  return { bare, work };
}

export type FileSpec =
  | string
  | { content: string | Uint8Array; mode?: 0o755 | 0o644 }
  | { symlink: string }
  | null;

/**
 * Writes `files` (paths relative to `work`, "/"-separated; null deletes the
 * path), commits everything with `message` and returns the new commit sha.
 * Whatever is in the way is replaced: a directory by a file, a file or
 * symlink by a directory. Deletions happen before writes.
 */
export async function commitFiles(work: string, files: Record<string, FileSpec>, message: string): Promise<string> {
  const entries = Object.entries(files);
  for (const [path, spec] of entries) {
    if (spec === null) await rm(resolveInside(work, path), { recursive: true, force: true });
  }
  for (const [path, spec] of entries) {
    if (spec === null) continue;
    const target = resolveInside(work, path);
    await makeRoomFor(work, path);
    if (typeof spec === "object" && "symlink" in spec) {
      await symlink(spec.symlink, target);
    } else {
      const { content, mode = 0o644 } = typeof spec === "string" ? { content: spec } : spec;
      await writeFile(target, content);
      await chmod(target, mode); // explicit, because writeFile's mode is filtered by the umask
    }
  }
  await git(work, "add", "-A");
  await git(work, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", message);
  return git(work, "rev-parse", "HEAD");
}

function resolveInside(work: string, path: string): string {
  if (isAbsolute(path) || path.split("/").some((part) => part === ".." || part === "")) {
    throw new Error(`commitFiles: path must be relative, without "..": ${JSON.stringify(path)}`);
  }
  return join(work, path);
}

/** Removes a non-directory where a parent directory must go, and whatever is at the path itself. */
async function makeRoomFor(work: string, path: string): Promise<void> {
  const parts = path.split("/");
  for (let i = 1; i < parts.length; i++) {
    const ancestor = join(work, ...parts.slice(0, i));
    const stat = await lstat(ancestor).catch(() => undefined);
    if (!stat) break; // nothing deeper exists either
    if (!stat.isDirectory()) {
      await rm(ancestor, { force: true });
      break;
    }
  }
  await mkdir(dirname(join(work, path)), { recursive: true });
  await rm(join(work, path), { recursive: true, force: true });
}

/**
 * Pushes the work clone's HEAD (or `opts.from`) to `refs/heads/<branch>` on
 * origin and returns the pushed commit sha.
 */
export async function push(
  work: string,
  branch = "main",
  opts: { force?: boolean; from?: string } = {},
): Promise<string> {
  const from = opts.from ?? "HEAD";
  const sha = await git(work, "rev-parse", `${from}^{commit}`);
  await git(work, "push", "--quiet", ...(opts.force ? ["--force"] : []), "origin", `${sha}:refs/heads/${branch}`);
  return sha;
}

type TreeEntry = { mode: string; oid: string };

/** `git ls-tree -r -z --full-tree`: path -> mode and blob oid. */
async function readTree(repo: string, commit: string): Promise<Map<string, TreeEntry>> {
  const { stdout } = await runGit(repo, ["ls-tree", "-r", "-z", "--full-tree", commit]);
  const tree = new Map<string, TreeEntry>();
  for (const record of new TextDecoder().decode(stdout).split("\0")) {
    if (!record) continue;
    // "<mode> <type> <oid>\t<path>"
    const tab = record.indexOf("\t");
    const [mode = "", , oid = ""] = record.slice(0, tab).split(" ");
    tree.set(record.slice(tab + 1), { mode, oid });
  }
  return tree;
}

/** Blob contents by oid, with one `git cat-file --batch` rather than a process per file. */
async function readBlobs(repo: string, oids: string[]): Promise<Map<string, Uint8Array>> {
  const blobs = new Map<string, Uint8Array>();
  const unique = [...new Set(oids)];
  if (unique.length === 0) return blobs;
  const { stdout } = await runGit(repo, ["cat-file", "--batch"], { stdin: unique.join("\n") + "\n" });
  let pos = 0;
  while (pos < stdout.length) {
    // "<oid> <type> <size>\n<content>\n"
    const newline = stdout.indexOf(0x0a, pos);
    const [oid = "", , size = ""] = new TextDecoder().decode(stdout.subarray(pos, newline)).split(" ");
    const start = newline + 1;
    const end = start + Number(size);
    blobs.set(oid, stdout.subarray(start, end));
    pos = end + 1;
  }
  return blobs;
}

type FoundEntry = { kind: "file"; executable: boolean } | { kind: "symlink" } | { kind: "other" };

/** Every non-directory under dir, by "/"-separated relative path, without following symlinks. */
async function walk(dir: string, prefix = "", found = new Map<string, FoundEntry>()): Promise<Map<string, FoundEntry>> {
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (path === ".git") continue;
    if (entry.isDirectory()) await walk(dir, path, found);
    else if (entry.isSymbolicLink()) found.set(path, { kind: "symlink" });
    else if (entry.isFile()) {
      // Git itself only looks at the owner's execute bit.
      const { mode } = await lstat(join(dir, path));
      found.set(path, { kind: "file", executable: (mode & 0o100) !== 0 });
    } else found.set(path, { kind: "other" });
  }
  return found;
}

/**
 * Asserts that the regular files and symlinks under `dir` (ignoring dir/.git,
 * the paths in `ignore` and anything below them) are exactly the tree of
 * `commit` in `repo` (a work tree, a .git dir or a bare repo): same paths,
 * byte-identical contents, executable bit as in 100755 vs 100644, and
 * symlinks (120000) as real symlinks with the same target. Submodule entries
 * are not checked. On failure, the assertion lists one line per differing path.
 */
export async function expectTreeEquals(dir: string, repo: string, commit: string, ignore: string[] = []): Promise<void> {
  const ignored = (path: string) =>
    ignore.some((prefix) => {
      const p = prefix.replace(/\/+$/, "");
      return path === p || path.startsWith(`${p}/`);
    });
  const expected = new Map([...(await readTree(repo, commit))].filter(([path, e]) => !ignored(path) && e.mode !== "160000"));
  const found = new Map([...(await walk(dir))].filter(([path]) => !ignored(path)));
  const blobs = await readBlobs(repo, [...expected.values()].map((e) => e.oid));

  const problems: string[] = [];
  for (const [path, { mode, oid }] of expected) {
    const actual = found.get(path);
    const blob = blobs.get(oid) ?? new Uint8Array(0);
    const full = join(dir, path);
    if (!actual) {
      problems.push(`${path}: missing (expected ${mode === "120000" ? "symlink" : `file with mode ${mode}`})`);
    } else if (mode === "120000") {
      if (actual.kind !== "symlink") {
        problems.push(`${path}: expected a symlink, found a ${actual.kind === "file" ? "regular file" : "special file"}`);
      } else {
        const target = await readlink(full, { encoding: "buffer" });
        if (!target.equals(blob)) {
          problems.push(`${path}: symlink points to ${JSON.stringify(target.toString())}, expected ${JSON.stringify(Buffer.from(blob).toString())}`);
        }
      }
    } else if (actual.kind !== "file") {
      problems.push(`${path}: expected a regular file (mode ${mode}), found a ${actual.kind === "symlink" ? "symlink" : "special file"}`);
    } else {
      const content = await Bun.file(full).bytes();
      if (!Buffer.from(content).equals(blob)) problems.push(`${path}: ${describeDifference(blob, content)}`);
      const wantExecutable = mode === "100755";
      if (actual.executable !== wantExecutable) {
        problems.push(`${path}: ${actual.executable ? "is executable" : "is not executable"}, expected mode ${mode}`);
      }
    }
  }
  for (const [path, actual] of found) {
    if (!expected.has(path)) problems.push(`${path}: unexpected ${actual.kind === "file" ? "file" : actual.kind} (not in ${commit.slice(0, 12)})`);
  }
  problems.sort();
  // dir and commit show up as unchanged context in the failure diff.
  expect({ dir, commit, problems }).toEqual({ dir, commit, problems: [] });
}

function describeDifference(expected: Uint8Array, actual: Uint8Array): string {
  let i = 0;
  while (i < expected.length && i < actual.length && expected[i] === actual[i]) i++;
  return `content differs (expected ${expected.length} bytes, found ${actual.length} bytes, first difference at byte ${i})`;
}
