/**
 * End-to-end tests of the in-place deploy: runDeploy() fetches from a real
 * git remote (native `git http-backend` over smart HTTP) and updates a
 * checkout in place. Native git is used only to build the remote and to judge
 * the result: the tree must equal the pushed commit byte for byte and mode for
 * mode, and `git status` in the checkout must be clean.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { newDeployId } from "../../src/deploy/deploy-id.ts";
import { runDeploy, type DeployOutcome } from "../../src/deploy/pipeline.ts";
import { silentLogger } from "../../src/log.ts";
import { GitError, type GitErrorCode } from "../../src/git/git-error.ts";
import { Secret } from "../../src/config/secret.ts";
import type { LoadedTarget } from "../../src/config/loaded-target.ts";
import { commitFiles, createRemote, expectTreeEquals, git, makeTempDir, push, removeTempDirs, runGit, type FileSpec } from "../helpers/git-fixture.ts";
import { startGitServer, type GitServer } from "../helpers/git-server.ts";
import { testTarget } from "../helpers/test-target.ts";

const exists = (path: string) => lstat(path).then(() => true, () => false);

// Every test runs a dozen or more git processes; on a busy machine one can take seconds.
setDefaultTimeout(60_000);

const REF = "refs/heads/main";
/** Ignored by the repository's .gitignore: a deploy must never touch them. */
const LOCAL = ["uploads", ".env"];
const GITIGNORE = "uploads/\n.env\n";

let tmp: string;
let root: string;
let server: GitServer;
/** Repository names (e.g. "site-3.git") for which the shared server answers HTTP 500. */
const broken = new Set<string>();

beforeAll(async () => {
  tmp = await makeTempDir("in-place");
  root = join(tmp, "repos");
  await mkdir(root, { recursive: true });
  server = await startGitServer({
    root,
    onRequest: (req) => {
      const repo = new URL(req.url).pathname.split("/")[1] ?? "";
      return broken.has(repo) ? new Response("internal error\n", { status: 500 }) : undefined;
    },
  });
});
afterAll(async () => {
  await server.stop();
  await removeTempDirs();
});

interface Site {
  name: string;
  bare: string;
  work: string;
  url: string;
  /** The deploy directory; it does not exist until the first deploy or the test creates it. */
  dir: string;
}

let sites = 0;
async function newSite(): Promise<Site> {
  const name = `site-${++sites}.git`;
  const { bare, work } = await createRemote(root, name);
  return { name, bare, work, url: server.url(name), dir: join(tmp, "deploys", name.replace(/\.git$/, ""), "www") };
}

function targetFor(site: Site, overrides: Partial<LoadedTarget> = {}): LoadedTarget {
  return testTarget({ repo: site.dir, remote: site.url, refs: REF, ...overrides });
}

function deploy(site: Site, commit: string | undefined, overrides: Partial<LoadedTarget> = {}): Promise<DeployOutcome> {
  return runDeploy(targetFor(site, overrides), { ref: REF, commit });
}

/** Commits `files` in the site's work clone, pushes, and returns the pushed commit. */
async function pushFiles(site: Site, files: Record<string, FileSpec>, message = "change"): Promise<string> {
  await commitFiles(site.work, files, message);
  return push(site.work);
}

/** Pushes `files` and deploys them; the checkout then also holds ignored local files under LOCAL. */
async function deployedSite(files: Record<string, FileSpec>): Promise<{ site: Site; first: string }> {
  const site = await newSite();
  const first = await pushFiles(site, { ".gitignore": GITIGNORE, ...files }, "first");
  await deploy(site, first);
  await addLocalFiles(site.dir);
  return { site, first };
}

async function addLocalFiles(dir: string): Promise<void> {
  await mkdir(join(dir, "uploads/2024"), { recursive: true });
  await writeFile(join(dir, "uploads/2024/photo.jpg"), randomBytes(3000));
  await writeFile(join(dir, ".env"), "DB_PASSWORD=local\n");
}

/** The checkout is exactly `commit`: same tree, clean `git status`, HEAD on the branch at the commit. */
async function expectDeployed(site: Site, commit: string, ignore: string[] = LOCAL): Promise<void> {
  // Before `git status`, which would refresh the index: every entry's stat data must already match its file.
  expect(await git(site.dir, "diff-files", "--name-only")).toBe("");
  await expectTreeEquals(site.dir, site.bare, commit, ignore);
  expect(await git(site.dir, "status", "--porcelain")).toBe("");
  expect(await git(site.dir, "rev-parse", "HEAD")).toBe(commit);
  expect(await git(site.dir, "symbolic-ref", "HEAD")).toBe(REF);
}

/** Everything under dir (.git aside) by path: kind, permission bits, content hash or link target. */
async function listTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const full = join(entry.parentPath, entry.name);
    const path = full.slice(dir.length + 1);
    if (path === ".git" || path.startsWith(".git/")) continue;
    const st = await lstat(full);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[path] = `symlink -> ${await readlink(full)}`;
    else if (st.isDirectory()) out[path] = `dir ${mode}`;
    else out[path] = `file ${mode} ${createHash("sha1").update(await readFile(full)).digest("hex")}`;
  }
  return out;
}

async function indexHash(dir: string): Promise<string> {
  return createHash("sha1").update(await readFile(join(dir, ".git/index"))).digest("hex");
}

interface Snapshot {
  files: Record<string, string>;
  head: string;
  branch: string;
  lsFiles: string;
  status: string;
  index: string;
}

/** What a failed deploy must leave alone. git status runs first: it may refresh the index itself. */
async function snapshot(dir: string): Promise<Snapshot> {
  const status = await git(dir, "status", "--porcelain");
  return {
    status,
    lsFiles: await git(dir, "ls-files", "-s"),
    head: await git(dir, "rev-parse", "HEAD"),
    branch: await git(dir, "symbolic-ref", "HEAD"),
    index: await indexHash(dir),
    files: await listTree(dir),
  };
}

async function expectUnchanged(dir: string, before: Snapshot): Promise<void> {
  const index = await indexHash(dir); // before any native git command can refresh it
  const after = await snapshot(dir);
  expect({ ...after, index }).toEqual(before);
}

async function expectGitError(promise: Promise<unknown>, code: GitErrorCode, message?: RegExp): Promise<GitError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GitError);
  const gitError = err as GitError;
  expect({ code: gitError.code, message: gitError.message }).toMatchObject({ code });
  if (message) expect(gitError.message).toMatch(message);
  return gitError;
}

describe("first deploy", () => {
  test("a deploy into a missing directory creates it and checks out the pushed commit", async () => {
    const site = await newSite();
    const commit = await pushFiles(site, {
      "index.html": "<h1>hi</h1>\n",
      "css/site.css": "body{}\n",
      "bin/build.sh": { content: "#!/bin/sh\n", mode: 0o755 },
      current: { symlink: "css" },
    });

    const outcome = await deploy(site, commit);

    expect(outcome).toMatchObject({ previous: undefined, commit, changedPaths: 4 });
    expect(outcome.bytesReceived).toBeGreaterThan(0);
    await expectDeployed(site, commit);
    expect(await git(site.dir, "config", "remote.origin.url")).toBe(site.url);
  });

  test("a deploy into an existing empty directory checks out the pushed commit", async () => {
    const site = await newSite();
    const commit = await pushFiles(site, { "index.html": "<h1>hi</h1>\n", "a/b/c.txt": "deep\n" });
    await mkdir(site.dir, { recursive: true });

    await deploy(site, commit);

    await expectDeployed(site, commit);
  });

  test("a first deploy builds its tree beside .git and leaves no staging directory behind", async () => {
    const site = await newSite();
    const commit = await pushFiles(site, { "index.html": "top\n", "a/b.txt": "b\n", run: { content: "#!/bin/sh\n", mode: 0o755 }, latest: { symlink: "a" } });

    await deploy(site, commit);

    await expectDeployed(site, commit);
    expect((await readdir(site.dir)).sort()).toEqual([".git", "a", "index.html", "latest", "run"]);
  });

  test.each([
    ["while writing into its staging directory", [] as string[]],
    ["while moving its tree into place", ["a", "index.html"]],
  ])("a first deploy killed %s converges when run again", async (_when, moved) => {
    const site = await newSite();
    const commit = await pushFiles(site, { "index.html": "top\n", "a/b.txt": "b\n", "c/d.txt": "d\n", "e.txt": "e\n" });
    await deploy(site, commit);
    // What the kill leaves: objects fetched, no index, HEAD unborn; the staging
    // directory holds the rest of the tree (one file half-written), `moved` is in place.
    await unlink(join(site.dir, ".git/index"));
    await runGit(site.dir, ["update-ref", "-d", REF]);
    const staging = join(site.dir, ".hooksd-first-checkout");
    await mkdir(staging);
    for (const name of ["a", "c", "e.txt", "index.html"]) {
      if (!moved.includes(name)) await rename(join(site.dir, name), join(staging, name));
    }
    await writeFile(join(staging, "c/d.txt"), "hal");

    await deploy(site, commit);

    await expectDeployed(site, commit);
    expect(await exists(staging)).toBe(false);
  });

  test("a deploy into a checkout made by native git clone over HTTP moves it to the pushed commit", async () => {
    const site = await newSite();
    const cloned = await pushFiles(site, {
      ".gitignore": GITIGNORE,
      "index.html": "v1\n",
      "old.txt": "old\n",
      "run.sh": { content: "#!/bin/sh\n", mode: 0o755 },
      link: { symlink: "index.html" },
    });
    await mkdir(dirname(site.dir), { recursive: true });
    await git(dirname(site.dir), "clone", "--quiet", site.url, site.dir);
    await addLocalFiles(site.dir);
    const localBefore = await listTree(join(site.dir, "uploads"));
    const commit = await pushFiles(site, { "index.html": "v2\n", "old.txt": null, "new/page.html": "new\n", link: { symlink: "new/page.html" } });

    const outcome = await deploy(site, commit);

    expect(outcome).toMatchObject({ previous: cloned, commit });
    await expectDeployed(site, commit);
    expect(await listTree(join(site.dir, "uploads"))).toEqual(localBefore);
    expect(await readFile(join(site.dir, ".env"), "utf8")).toBe("DB_PASSWORD=local\n");
  });

  test("a deploy without a pinned commit deploys the ref's current tip", async () => {
    const site = await newSite();
    const commit = await pushFiles(site, { "index.html": "tip\n" });

    expect((await deploy(site, undefined)).commit).toBe(commit);
    await expectDeployed(site, commit);
  });
});

describe("the checkout follows the pushed commit", () => {
  test("additions, modifications and deletions land while ignored files stay untouched", async () => {
    const { site } = await deployedSite({
      "index.html": "v1\n",
      "about.html": "about\n",
      "css/a.css": "a\n",
      "css/b.css": "b\n",
      "gone/deep/x.txt": "x\n",
    });
    const local = await listTree(site.dir).then((all) => Object.entries(all).filter(([p]) => LOCAL.some((l) => p === l || p.startsWith(`${l}/`))));
    const commit = await pushFiles(site, {
      "index.html": "v2 with more bytes\n",
      "about.html": null,
      "css/b.css": null,
      "css/c.css": "c\n",
      "gone/deep/x.txt": null,
      "js/app.js": "console.log(1)\n",
      "img/logo.bin": { content: new Uint8Array([0, 255, 1, 254, 0, 0, 10, 13]) },
    });

    const outcome = await deploy(site, commit);

    expect(outcome.changedPaths).toBe(7);
    await expectDeployed(site, commit);
    const after = await listTree(site.dir);
    for (const [path, description] of local) expect(after[path]).toBe(description);
    // A directory emptied by the deploy goes away, as with git.
    expect(await lstat(join(site.dir, "gone")).catch(() => undefined)).toBeUndefined();
  });

  test("an untracked file that is not ignored survives and is all git status reports", async () => {
    const { site } = await deployedSite({ "index.html": "v1\n", "docs/a.md": "a\n" });
    await writeFile(join(site.dir, "docs/notes.txt"), "mine\n");
    const commit = await pushFiles(site, { "index.html": "v2\n", "docs/a.md": null });

    await deploy(site, commit);

    await expectTreeEquals(site.dir, site.bare, commit, [...LOCAL, "docs/notes.txt"]);
    expect(await readFile(join(site.dir, "docs/notes.txt"), "utf8")).toBe("mine\n");
    // docs/ holds nothing tracked any more, but it is kept for the untracked file in it.
    expect(await git(site.dir, "status", "--porcelain")).toBe("?? docs/");
    expect(await git(site.dir, "rev-parse", "HEAD")).toBe(commit);
  });

  test("a renamed file moves to its new path and its old directory disappears", async () => {
    const { site } = await deployedSite({ "old/name.txt": "same content\n", "keep.txt": "k\n" });
    await git(site.work, "mv", "old", "new");
    const commit = await pushFiles(site, { "keep.txt": "k\n" }, "rename");

    await deploy(site, commit);

    await expectDeployed(site, commit);
    expect(await lstat(join(site.dir, "old")).catch(() => undefined)).toBeUndefined();
  });

  test("the executable bit follows the commit in both directions", async () => {
    const { site } = await deployedSite({ "run.sh": { content: "#!/bin/sh\necho 1\n", mode: 0o755 }, "data.txt": "d\n" });

    const off = await pushFiles(site, { "run.sh": { content: "#!/bin/sh\necho 1\n", mode: 0o644 }, "data.txt": { content: "d\n", mode: 0o755 } });
    await deploy(site, off);
    await expectDeployed(site, off);

    const on = await pushFiles(site, { "run.sh": { content: "#!/bin/sh\necho 1\n", mode: 0o755 }, "data.txt": { content: "d\n", mode: 0o644 } });
    await deploy(site, on);
    await expectDeployed(site, on);
  });

  test("symlinks are added, retargeted, replaced by a file and back", async () => {
    const { site } = await deployedSite({ "releases/v1.txt": "one\n", "releases/v2.txt": "two\n" });

    const added = await pushFiles(site, { current: { symlink: "releases/v1.txt" }, latest: { symlink: "releases" }, dangling: { symlink: "../nowhere" } });
    await deploy(site, added);
    await expectDeployed(site, added);

    const retargeted = await pushFiles(site, { current: { symlink: "releases/v2.txt" }, dangling: { symlink: "/also/nowhere" } });
    await deploy(site, retargeted);
    await expectDeployed(site, retargeted);

    const file = await pushFiles(site, { current: "a plain file now\n", latest: "plain too\n" });
    await deploy(site, file);
    await expectDeployed(site, file);
    expect((await lstat(join(site.dir, "current"))).isFile()).toBe(true);

    const back = await pushFiles(site, { current: { symlink: "releases/v1.txt" }, latest: { symlink: "releases" } });
    await deploy(site, back);
    await expectDeployed(site, back);
    expect(await readlink(join(site.dir, "current"))).toBe("releases/v1.txt");
  });

  test("a symlink to a directory can be replaced by a real directory holding the same file names, and back", async () => {
    const { site } = await deployedSite({ "real/page.html": "real\n", docs: { symlink: "real" } });

    const dirCommit = await pushFiles(site, { docs: null, "docs/page.html": "docs of its own\n" });
    await deploy(site, dirCommit);
    await expectDeployed(site, dirCommit);
    expect(await readFile(join(site.dir, "real/page.html"), "utf8")).toBe("real\n");

    const linkAgain = await pushFiles(site, { docs: { symlink: "real" } });
    await deploy(site, linkAgain);
    await expectDeployed(site, linkAgain);
  });

  test("a file can be replaced by a directory and back", async () => {
    const { site } = await deployedSite({ page: "a file\n", "a/b/c.txt": "deep\n" });

    const toDir = await pushFiles(site, { page: null, "page/index.html": "now a dir\n", "page/img/x.bin": "x\n", "a/b/c.txt": null, a: "a is a file\n" });
    await deploy(site, toDir);
    await expectDeployed(site, toDir);

    const toFile = await pushFiles(site, { page: "a file again\n", a: null, "a/b/c.txt": "deep again\n" });
    await deploy(site, toFile);
    await expectDeployed(site, toFile);
  });

  test("a force push that rewrites history deploys a commit that is not a descendant of the deployed one", async () => {
    const { site, first } = await deployedSite({ "index.html": "v1\n", "shared.txt": "s\n" });
    const second = await pushFiles(site, { "index.html": "v2\n", "only-in-v2.txt": "doomed\n", "shared.txt": null });
    await deploy(site, second);
    await expectDeployed(site, second);

    await git(site.work, "reset", "--quiet", "--hard", first);
    await commitFiles(site.work, { "index.html": "rewritten\n", "other.txt": "o\n" }, "rewrite");
    const rewritten = await push(site.work, "main", { force: true });
    expect(await git(site.work, "merge-base", "--is-ancestor", second, rewritten).catch(() => "not an ancestor")).toBe("not an ancestor");

    const outcome = await deploy(site, rewritten);

    expect(outcome).toMatchObject({ previous: second, commit: rewritten });
    await expectDeployed(site, rewritten);
  });

  test("redeploying the deployed commit changes nothing and stays clean", async () => {
    const { site, first } = await deployedSite({ "index.html": "v1\n" });
    const before = await snapshot(site.dir);

    expect((await deploy(site, first)).changedPaths).toBe(0);

    await expectUnchanged(site.dir, before);
    await expectDeployed(site, first);
  });
});

describe("local changes", () => {
  test("a tracked file modified locally fails the deploy with LOCAL_CHANGES naming it and leaves the checkout as it was", async () => {
    const { site } = await deployedSite({ "index.html": "v1\n", "css/site.css": "body{}\n" });
    await writeFile(join(site.dir, "css/site.css"), "body{color:red}\n");
    const commit = await pushFiles(site, { "index.html": "v2\n", "css/site.css": "body{margin:0}\n" });
    const before = await snapshot(site.dir);
    expect(before.status).toBe(" M css/site.css");

    await expectGitError(deploy(site, commit), "LOCAL_CHANGES", /css\/site\.css/);

    await expectUnchanged(site.dir, before);
  });

  test("with force, a locally modified tracked file is overwritten", async () => {
    const { site } = await deployedSite({ "index.html": "v1\n", "css/site.css": "body{}\n" });
    await writeFile(join(site.dir, "css/site.css"), "body{color:red}\n");
    await chmod(join(site.dir, "index.html"), 0o755);
    const commit = await pushFiles(site, { "index.html": "v2\n", "css/site.css": "body{margin:0}\n" });

    await deploy(site, commit, { force: true });

    await expectDeployed(site, commit);
  });

  test("an untracked file where the new commit adds a tracked file fails with UNTRACKED_CONFLICT naming it and changes nothing", async () => {
    const { site } = await deployedSite({ "index.html": "v1\n" });
    await mkdir(join(site.dir, "blog"));
    await writeFile(join(site.dir, "blog/post.html"), "my draft\n");
    const commit = await pushFiles(site, { "index.html": "v2\n", "blog/post.html": "the real post\n" });
    const before = await snapshot(site.dir);

    await expectGitError(deploy(site, commit), "UNTRACKED_CONFLICT", /blog\/post\.html/);

    await expectUnchanged(site.dir, before);
  });

  test("with force, an untracked file in the way of a new tracked file is replaced", async () => {
    const { site } = await deployedSite({ "index.html": "v1\n" });
    await mkdir(join(site.dir, "blog"));
    await writeFile(join(site.dir, "blog/post.html"), "my draft\n");
    // An untracked directory where a file goes, and a file where a directory goes.
    await mkdir(join(site.dir, "feed.xml/junk"), { recursive: true });
    await writeFile(join(site.dir, "feed.xml/junk/x"), "x\n");
    await writeFile(join(site.dir, "static"), "not a dir\n");
    const commit = await pushFiles(site, { "blog/post.html": "the real post\n", "feed.xml": "<rss/>\n", "static/app.js": "1\n" });

    await deploy(site, commit, { force: true });

    await expectDeployed(site, commit);
  });

  test("an untracked file inside a tracked directory that the new commit turns into a file fails and changes nothing", async () => {
    const { site } = await deployedSite({ "index.html": "v1\n", "blog/a.html": "a\n", "blog/b.html": "b\n" });
    await writeFile(join(site.dir, "blog/draft.html"), "unfinished\n");
    const commit = await pushFiles(site, { blog: "blog is a file now\n" });
    const before = await snapshot(site.dir);

    await expectGitError(deploy(site, commit), "UNTRACKED_CONFLICT", /blog/);

    await expectUnchanged(site.dir, before);
  });

  test("an untracked symlink where the new commit adds a directory fails instead of writing through it", async () => {
    const { site } = await deployedSite({ "index.html": "v1\n" });
    const outside = join(dirname(site.dir), "outside");
    await mkdir(outside);
    await symlink(outside, join(site.dir, "cache"));
    const commit = await pushFiles(site, { "cache/data.txt": "tracked\n" });
    const before = await snapshot(site.dir);

    await expectGitError(deploy(site, commit), "UNTRACKED_CONFLICT", /cache/);

    await expectUnchanged(site.dir, before);
    expect(await readdir(outside)).toEqual([]);
  });

  test("a tracked directory replaced locally by a symlink fails the deploy, and with force nothing is written or deleted through the link", async () => {
    const { site } = await deployedSite({ "index.html": "v1\n", "assets/a.css": "a\n", "assets/b.css": "b\n" });
    const outside = join(dirname(site.dir), "outside");
    await mkdir(outside);
    await writeFile(join(outside, "a.css"), "outside a\n");
    await writeFile(join(outside, "b.css"), "outside b\n");
    const outsideBefore = await listTree(outside);
    await rm(join(site.dir, "assets"), { recursive: true });
    await symlink(outside, join(site.dir, "assets"));
    const commit = await pushFiles(site, { "assets/a.css": "a2\n", "assets/b.css": null, "index.html": "v2\n" });
    const before = await snapshot(site.dir);

    await expectGitError(deploy(site, commit), "UNTRACKED_CONFLICT", /assets/);
    await expectUnchanged(site.dir, before);
    expect(await listTree(outside)).toEqual(outsideBefore);

    await deploy(site, commit, { force: true });
    await expectDeployed(site, commit);
    expect(await listTree(outside)).toEqual(outsideBefore);
  });

  test("a tracked file deleted locally is restored by the next deploy", async () => {
    const { site } = await deployedSite({ "index.html": "v1\n", "keep/me.txt": "precious\n", "run.sh": { content: "#!/bin/sh\n", mode: 0o755 } });
    await rm(join(site.dir, "keep"), { recursive: true });
    await unlink(join(site.dir, "run.sh"));
    const commit = await pushFiles(site, { "index.html": "v2\n" });

    await deploy(site, commit);

    await expectDeployed(site, commit);
  });
});

describe("failures leave the checkout as it was", () => {
  async function deployedWithPendingPush() {
    const { site, first } = await deployedSite({ "index.html": "v1\n", "a.txt": "a\n" });
    const next = await pushFiles(site, { "index.html": "v2\n", "b.txt": "b\n", "a.txt": null });
    return { site, first, next, before: await snapshot(site.dir) };
  }

  test("a fetch from a server that is not running fails with FETCH_FAILED", async () => {
    const { site, next, before } = await deployedWithPendingPush();
    const gone = await startGitServer({ root });
    const url = gone.url(site.name);
    await gone.stop();

    await expectGitError(deploy(site, next, { remote: url }), "FETCH_FAILED");

    await expectUnchanged(site.dir, before);
    await deploy(site, next);
    await expectDeployed(site, next);
  });

  test("a failed first deploy leaves a missing directory missing, and the next one starts afresh", async () => {
    const site = await newSite();
    const commit = await pushFiles(site, { "index.html": "<h1>hi</h1>\n" });
    const gone = await startGitServer({ root });
    const url = gone.url(site.name);
    await gone.stop();

    await expectGitError(deploy(site, commit, { remote: url, repo: join(site.dir, "deeper") }), "FETCH_FAILED");

    expect(await exists(site.dir)).toBe(false);
    await deploy(site, commit);
    await expectDeployed(site, commit);
  });

  test("a failed first deploy into an empty directory leaves it empty", async () => {
    const site = await newSite();
    const commit = await pushFiles(site, { "index.html": "<h1>hi</h1>\n" });
    await mkdir(site.dir, { recursive: true });
    broken.add(site.name);
    try {
      await expectGitError(deploy(site, commit), "FETCH_FAILED", /500/);
    } finally {
      broken.delete(site.name);
    }
    expect(await readdir(site.dir)).toEqual([]);
  });

  test("a fetch from a server answering HTTP 500 fails with FETCH_FAILED", async () => {
    const { site, next, before } = await deployedWithPendingPush();
    broken.add(site.name);
    try {
      await expectGitError(deploy(site, next), "FETCH_FAILED", /500/);
    } finally {
      broken.delete(site.name);
    }

    await expectUnchanged(site.dir, before);
    await deploy(site, next);
    await expectDeployed(site, next);
  });

  test("a server requiring credentials refuses a target without them, and never sees the password in a message", async () => {
    const { site, next, before } = await deployedWithPendingPush();
    const password = "hunter2-Very-Secret";
    const authed = await startGitServer({ root, auth: { username: "deployer", password } });
    try {
      const remote = authed.url(site.name);
      const secrets = [password, "wrong-Password-42", Buffer.from(`deployer:${password}`).toString("base64"), Buffer.from("deployer:wrong-Password-42").toString("base64")];
      const expectNoSecret = (err: GitError) => {
        for (const text of [err.message, String(err), Bun.inspect(err)]) for (const secret of secrets) expect(text).not.toContain(secret);
      };

      expectNoSecret(await expectGitError(deploy(site, next, { remote }), "FETCH_FAILED", /401/));
      await expectUnchanged(site.dir, before);

      const wrong = { username: "deployer", password: new Secret("wrong-Password-42") };
      expectNoSecret(await expectGitError(deploy(site, next, { remote, credentials: wrong }), "FETCH_FAILED", /401/));
      await expectUnchanged(site.dir, before);

      const credentials = { username: "deployer", password: new Secret(password) };
      await deploy(site, next, { remote, credentials });
      await expectDeployed(site, next);
    } finally {
      await authed.stop();
    }
  });

  test("a pushed commit force-pushed away before the deploy ran fails with COMMIT_NOT_FOUND", async () => {
    const { site, first } = await deployedSite({ "index.html": "v1\n" });
    const pushed = await pushFiles(site, { "index.html": "v2\n" });
    await git(site.work, "reset", "--quiet", "--hard", first);
    await commitFiles(site.work, { "index.html": "v2 rewritten\n" }, "rewrite");
    await push(site.work, "main", { force: true });
    const before = await snapshot(site.dir);

    await expectGitError(deploy(site, pushed), "COMMIT_NOT_FOUND", new RegExp(pushed));

    await expectUnchanged(site.dir, before);
  });

  test("a deploy interrupted half-way converges when run again", async () => {
    const { site } = await deployedSite({ "index.html": "v1\n", "a.txt": "a1\n", "old/x.txt": "x\n", "b.txt": "b1\n", "page": "file\n" });
    const commit = await pushFiles(site, {
      "index.html": "v2\n",
      "a.txt": "a2\n",
      "b.txt": "b2\n",
      "old/x.txt": null,
      "new/d.txt": "d\n",
      "new/e.txt": "e\n",
      page: null,
      "page/index.html": "dir\n",
    });
    // What a deploy killed half-way through leaves: some new files written, a deletion done.
    await writeFile(join(site.dir, "a.txt"), "a2\n");
    await mkdir(join(site.dir, "new"));
    await writeFile(join(site.dir, "new/d.txt"), "d\n");
    await rm(join(site.dir, "old"), { recursive: true });
    await unlink(join(site.dir, "page"));

    await deploy(site, commit);

    await expectDeployed(site, commit);
  });

  test("a deploy killed after a tracked file became a directory converges when run again (crash harness, in-place seed 77 trial 132)", async () => {
    const { site } = await deployedSite({ "index.html": "v1\n", page: "file\n" });
    const commit = await pushFiles(site, { "index.html": "v2\n", page: null, "page/index.html": "dir\n", "page/img/x.txt": "x\n" });
    // Killed mid-write: the file is gone, its directory holds part of the new files; HEAD and the index name the file.
    await unlink(join(site.dir, "page"));
    await mkdir(join(site.dir, "page"));
    await writeFile(join(site.dir, "page/index.html"), "dir\n");

    await deploy(site, commit);

    await expectDeployed(site, commit);
  });

  test("the redo of a deploy killed while writing the index removes the index.lock it left, but not an older one (crash harness, in-place seed 6001 trial 15)", async () => {
    const { site } = await deployedSite({ "index.html": "v1\n" });
    const commit = await pushFiles(site, { "index.html": "v2\n" });
    const lock = join(site.dir, ".git/index.lock");
    const redo = (startedAt: Date) =>
      runDeploy(targetFor(site), { ref: REF, commit, redoes: { id: "20261122T000000000Z-0000-aaaaaa", startedAt: startedAt.toISOString() } }, { id: newDeployId(), log: silentLogger });

    // Someone else's lock, from before the interrupted deploy started: left alone, as git would.
    await writeFile(lock, "not ours");
    await expect(redo(new Date(Date.now() + 60_000))).rejects.toThrow("Unable to create");
    expect(await readFile(lock, "utf8")).toBe("not ours");

    // The dead deploy's own lock, made after it started.
    await redo(new Date(Date.now() - 60_000));
    await expectDeployed(site, commit);
    expect(await exists(lock)).toBe(false);
  });

  test("a directory the user put where a tracked file was, holding files the new commit does not write there, still stops the deploy", async () => {
    const { site } = await deployedSite({ "index.html": "v1\n", page: "file\n" });
    const commit = await pushFiles(site, { page: null, "page/index.html": "dir\n" });
    await unlink(join(site.dir, "page"));
    await mkdir(join(site.dir, "page"));
    await writeFile(join(site.dir, "page/index.html"), "the user's own\n");

    await expect(deploy(site, commit)).rejects.toMatchObject({ code: "UNTRACKED_CONFLICT" });
    expect(await readFile(join(site.dir, "page/index.html"), "utf8")).toBe("the user's own\n");
  });
});

describe("transfer size", () => {
  test("an incremental deploy receives far fewer bytes than the cold one", async () => {
    const site = await newSite();
    const files: Record<string, FileSpec> = {};
    // Random text compresses little, so the cold pack is big.
    for (let i = 0; i < 200; i++) files[`d${i % 10}/f${i}.txt`] = randomBytes(1500).toString("base64");
    const first = await pushFiles(site, files);
    const cold = await deploy(site, first);
    const second = await pushFiles(site, { "d3/f3.txt": "changed\n" });

    const warm = await deploy(site, second);

    expect(warm.changedPaths).toBe(1);
    await expectDeployed(site, second, []);
    expect(cold.bytesReceived).toBeGreaterThan(200 * 1500);
    expect(warm.bytesReceived * 20).toBeLessThan(cold.bytesReceived);
  });
});

describe("hostile repositories", () => {
  /** A tree object from raw entries, written with --literally so git does not vet the names. */
  async function writeTree(repo: string, entries: { mode: string; name: string; oid: string }[]): Promise<string> {
    const body = Buffer.concat(entries.map((e) => Buffer.concat([Buffer.from(`${e.mode} ${e.name}\0`), Buffer.from(e.oid, "hex")])));
    const { stdout } = await runGit(repo, ["hash-object", "-w", "-t", "tree", "--literally", "--stdin"], { stdin: body });
    return new TextDecoder().decode(stdout).trim();
  }

  async function writeBlob(repo: string, content: string): Promise<string> {
    const { stdout } = await runGit(repo, ["hash-object", "-w", "--stdin"], { stdin: content });
    return new TextDecoder().decode(stdout).trim();
  }

  const cases: [string, (repo: string, inner: string, page: string) => Promise<string>][] = [
    ["..", (repo, inner, page) => writeTree(repo, [{ mode: "40000", name: "..", oid: inner }, { mode: "100644", name: "index.html", oid: page }])],
    [".git", (repo, inner, page) => writeTree(repo, [{ mode: "40000", name: ".git", oid: inner }, { mode: "100644", name: "index.html", oid: page }])],
    [
      "sub/.GIT",
      async (repo, inner, page) => {
        const sub = await writeTree(repo, [{ mode: "40000", name: ".GIT", oid: inner }]);
        return writeTree(repo, [{ mode: "100644", name: "index.html", oid: page }, { mode: "40000", name: "sub", oid: sub }]);
      },
    ],
  ];

  test.each(cases)("a pushed tree with an entry at %s fails with UNSAFE_TREE and writes nothing", async (where, buildRoot) => {
    const { site, first } = await deployedSite({ "index.html": "v1\n" });
    const { work } = site;
    const page = await writeBlob(work, "v2\n");
    const payload = await writeBlob(work, "[core]\n\tworktree = /\n# pwned\n");
    const inner = await writeTree(work, [
      { mode: "100644", name: "config", oid: payload },
      { mode: "100644", name: "escaped.txt", oid: payload },
    ]);
    const tree = await buildRoot(work, inner, page);
    const hostile = await git(work, "commit-tree", tree, "-p", first, "-m", "hostile");
    await git(work, "push", "--quiet", "origin", `${hostile}:refs/heads/main`);
    const parent = dirname(site.dir);
    expect(await readdir(parent)).toEqual(["www"]);
    const before = await snapshot(site.dir);
    const gitConfig = await readFile(join(site.dir, ".git/config"), "utf8");

    const err = await expectGitError(deploy(site, hostile), "UNSAFE_TREE");
    expect(err.message).toContain(JSON.stringify(where.split("/").pop()));

    await expectUnchanged(site.dir, before);
    expect(await readdir(parent)).toEqual(["www"]); // nothing escaped through ".."
    expect(await readFile(join(site.dir, ".git/config"), "utf8")).toBe(gitConfig);
  });
});
