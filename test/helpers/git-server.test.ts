import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmod, lstat, readlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { commitFiles, createRemote, expectTreeEquals, git, makeTempDir, push, removeTempDirs } from "./git-fixture";
import { gitServersPerTest, startGitServer } from "./git-server.ts";

// Each test runs a dozen or more git processes; on a busy shared machine one of
// them can take seconds, which is no reason to fail.
setDefaultTimeout(30_000);

const serve = gitServersPerTest();
afterAll(removeTempDirs);

/** A served remote "site.git" with one pushed commit. */
async function siteWithOneCommit(files: Parameters<typeof commitFiles>[1] = { "index.html": "<h1>hello</h1>\n" }) {
  const tmp = await makeTempDir("git-server");
  const root = join(tmp, "repos");
  const { bare, work } = await createRemote(root, "site.git");
  const sha = await commitFiles(work, files, "first");
  await push(work);
  return { tmp, root, bare, work, sha };
}

describe("git server helper", () => {
  test("a native git clone over the helper's smart HTTP gets the pushed commit", async () => {
    const { tmp, root, bare, sha } = await siteWithOneCommit();
    const server = await serve({ root });

    await git(tmp, "clone", "--quiet", server.url("site.git"), "clone");

    expect(await git(join(tmp, "clone"), "rev-parse", "HEAD")).toBe(sha);
    await expectTreeEquals(join(tmp, "clone"), bare, sha);
    expect(server.requests).toBeGreaterThanOrEqual(2); // info/refs, then upload-pack
    expect(server.backendErrors).toEqual([]);
  });

  test("a native git push over HTTP updates a bare repo that did not enable receive-pack itself", async () => {
    const tmp = await makeTempDir("git-server");
    const root = join(tmp, "repos");
    await git(tmp, "init", "--quiet", "--bare", join(root, "plain.git"));
    const server = await serve({ root });
    const clone = join(tmp, "clone");
    await git(tmp, "clone", "--quiet", server.url("plain.git"), clone);

    const sha = await commitFiles(clone, { "a.txt": "pushed over http\n" }, "over http");
    await git(clone, "push", "--quiet", "origin", "HEAD:refs/heads/main");

    expect(await git(join(root, "plain.git"), "rev-parse", "refs/heads/main")).toBe(sha);
  });

  test("with auth, a clone without credentials fails and one with user:pass in the URL succeeds", async () => {
    const { tmp, root, sha } = await siteWithOneCommit();
    const server = await serve({ root, auth: { username: "alice", password: "s3cret" } });

    await expect(git(tmp, "clone", "--quiet", server.url("site.git"), "anonymous")).rejects.toThrow(
      /could not read Username|Authentication failed/,
    );
    const wrongPassword = server.url("site.git").replace("http://", "http://alice:wrong@");
    await expect(git(tmp, "clone", "--quiet", wrongPassword, "wrong")).rejects.toThrow(/Authentication failed/);

    const withCredentials = server.url("site.git").replace("http://", "http://alice:s3cret@");
    await git(tmp, "clone", "--quiet", withCredentials, "authed");
    expect(await git(join(tmp, "authed"), "rev-parse", "HEAD")).toBe(sha);

    const unauthenticated = await fetch(`${server.url("site.git")}/info/refs?service=git-upload-pack`);
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.headers.get("www-authenticate")).toBe('Basic realm="git"');
  });

  test("a push larger than git's post buffer streams through as a chunked request", async () => {
    const { tmp, root, bare, work } = await siteWithOneCommit();
    const server = await serve({ root });
    await git(work, "remote", "set-url", "origin", server.url("site.git"));
    // Random bytes do not compress, so the pack stays above http.postBuffer (1 MiB).
    const chunks = Array.from({ length: 32 }, () => crypto.getRandomValues(new Uint8Array(65536)));
    const sha = await commitFiles(work, { "big.bin": { content: Buffer.concat(chunks) } }, "big");

    await git(work, "push", "--quiet", "origin", "HEAD:refs/heads/main");

    expect(await git(bare, "rev-parse", "refs/heads/main")).toBe(sha);
    await git(tmp, "clone", "--quiet", server.url("site.git"), "clone");
    await expectTreeEquals(join(tmp, "clone"), bare, sha);
  });

  test("an unknown repository is a 404, not a server error", async () => {
    const { root } = await siteWithOneCommit();
    const server = await serve({ root });
    const response = await fetch(`${server.url("missing.git")}/info/refs?service=git-upload-pack`);
    expect(response.status).toBe(404);
    await response.body?.cancel();
  });

  test("a 300-file repository clones, and a fetch with many haves sends a gzip request body that works", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`dir${i % 7}/sub${i % 3}/file-${i}.txt`] = `file ${i}\n`.repeat(1 + (i % 50));
    const { tmp, root, bare, work, sha } = await siteWithOneCommit(files);
    const contentEncodings: string[] = [];
    const server = await serve({
      root,
      onRequest(req) {
        if (req.method === "POST") contentEncodings.push(req.headers.get("content-encoding") ?? "none");
        return undefined;
      },
    });
    const clone = join(tmp, "clone");
    await git(tmp, "clone", "--quiet", server.url("site.git"), clone);
    await expectTreeEquals(clone, bare, sha);

    // Local commits the server has never seen: the next fetch offers them all
    // as "have"s, in growing rounds, until the requests exceed git's 1 KiB
    // gzip threshold.
    for (let i = 0; i < 60; i++) await commitFiles(clone, { [`local-${i}.txt`]: `${i}\n` }, `local ${i}`);
    const upstream = await commitFiles(work, { "dir0/new.txt": "new upstream file\n" }, "upstream");
    await push(work);

    await git(clone, "fetch", "--quiet", "origin");

    expect(await git(clone, "rev-parse", "refs/remotes/origin/main")).toBe(upstream);
    expect(contentEncodings).toContain("gzip");
    expect(server.backendErrors).toEqual([]);
  });
});

describe("commitFiles", () => {
  test("writes modes and symlinks, deletes paths, and swaps files and directories", async () => {
    const tmp = await makeTempDir("fixture");
    const { bare, work } = await createRemote(join(tmp, "repos"), "swap.git");
    await commitFiles(
      work,
      {
        "a/inner.txt": "inner\n",
        b: "plain file\n",
        "run.sh": { content: "#!/bin/sh\necho hi\n", mode: 0o755 },
        link: { symlink: "b" },
        gone: "soon deleted\n",
      },
      "first",
    );
    const second = await commitFiles(work, { a: "a is a file now\n", "b/inner.txt": "b is a dir now\n", gone: null }, "swap");
    await push(work);

    const tree = await git(bare, "ls-tree", "-r", "--full-tree", "main");
    expect(tree).toContain("100755 blob");
    expect(tree).toContain("120000 blob");
    expect(tree).not.toContain("gone");
    expect((await lstat(join(work, "link"))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(work, "link"))).toBe("b");
    await expectTreeEquals(work, bare, second);
  });
});

describe("expectTreeEquals", () => {
  async function checkout() {
    const { tmp, root, bare, sha } = await siteWithOneCommit({
      "index.html": "<h1>hello</h1>\n",
      "bin/deploy.sh": { content: "#!/bin/sh\nexit 0\n", mode: 0o755 },
      "assets/logo.bin": { content: new Uint8Array([0, 1, 2, 255, 254]) },
      current: { symlink: "assets" },
    });
    const server = await serve({ root });
    const dir = join(tmp, "checkout");
    await git(tmp, "clone", "--quiet", server.url("site.git"), dir);
    return { dir, bare, sha };
  }

  test("passes on a fresh checkout of the commit", async () => {
    const { dir, bare, sha } = await checkout();
    await expectTreeEquals(dir, bare, sha);
    await expectTreeEquals(dir, join(dir, ".git"), sha);
  });

  test("fails naming the path when a file's content differs", async () => {
    const { dir, bare, sha } = await checkout();
    await writeFile(join(dir, "index.html"), "<h1>changed</h1>\n");
    await expect(expectTreeEquals(dir, bare, sha)).rejects.toThrow(/index\.html: content differs/);
  });

  test("fails when the executable bit is wrong in either direction", async () => {
    const { dir, bare, sha } = await checkout();
    await chmod(join(dir, "bin/deploy.sh"), 0o644);
    await expect(expectTreeEquals(dir, bare, sha)).rejects.toThrow(/bin\/deploy\.sh: is not executable/);
    await chmod(join(dir, "bin/deploy.sh"), 0o755);
    await chmod(join(dir, "index.html"), 0o755);
    await expect(expectTreeEquals(dir, bare, sha)).rejects.toThrow(/index\.html: is executable/);
  });

  test("fails on an extra file, a missing file and a symlink replaced by a file, unless those paths are ignored", async () => {
    const { dir, bare, sha } = await checkout();
    await commitFiles(dir, { "extra.txt": "x\n", "assets/logo.bin": null, current: "not a link\n" }, "local changes");
    const failure = await expectTreeEquals(dir, bare, sha).then(
      () => undefined,
      (error: Error) => error.message,
    );
    expect(failure).toContain("extra.txt: unexpected file");
    expect(failure).toContain("assets/logo.bin: missing");
    expect(failure).toContain("current: expected a symlink, found a regular file");

    // The checkout does match its own new commit, and the differing paths can be ignored.
    await expectTreeEquals(dir, dir, await git(dir, "rev-parse", "HEAD"));
    await expectTreeEquals(dir, bare, sha, ["extra.txt", "assets/", "current"]);
  });
});
