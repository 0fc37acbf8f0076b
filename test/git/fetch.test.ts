/**
 * Our smart-HTTP fetch against a real `git http-backend`: what it leaves must
 * satisfy native git (fsck, shallow file), an incremental fetch must carry
 * only the change, and a connection cut mid-pack must leave nothing behind.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fetchRef } from "../../src/git/fetch.ts";
import { GitError } from "../../src/git/git-error.ts";
import { initRepository, setHead } from "../../src/git/repository.ts";
import { commitFiles, createRemote, git, makeTempDir, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { gitServersPerTest, startGitServer } from "../helpers/git-server.ts";

setDefaultTimeout(60_000);
afterAll(removeTempDirs);
const serve = gitServersPerTest();

const REF = "refs/heads/main";

async function site(files = 60) {
  const root = await makeTempDir("fetch");
  const { work } = await createRemote(join(root, "repos"), "site.git");
  const content: Record<string, string> = {};
  for (let i = 0; i < files; i++) content[`pages/p${i}.html`] = `${crypto.randomUUID().repeat(40)}\n`;
  const first = await commitFiles(work, content, "first");
  await push(work);
  return { root, work, first, reposRoot: join(root, "repos") };
}

const options = (url: string, commit?: string) => ({ url, ref: REF, commit, authorization: undefined, timeoutSeconds: 30 });

async function packDir(dir: string): Promise<string[]> {
  return (await readdir(join(dir, ".git/objects/pack"))).sort();
}

describe("fetchRef", () => {
  test("a first fetch brings only the tip, as a shallow repository native git finds consistent", async () => {
    const { root, work, first, reposRoot } = await site();
    await commitFiles(work, { "pages/p1.html": "second\n" }, "second");
    const tip = await commitFiles(work, { "pages/p2.html": "third\n" }, "third");
    await push(work);
    const server = await serve({ root: reposRoot });
    const repo = await initRepository(join(root, "checkout"), server.url("site.git"));

    const result = await fetchRef(repo, options(server.url("site.git")));

    expect(result.commit).toBe(tip);
    expect((await readFile(join(repo.gitdir, "shallow"), "utf8")).trim()).toBe(tip);
    await setHead(repo, REF, tip);
    await git(repo.dir, "fsck", "--strict", "--no-dangling");
    // Only the tip came: older commits are not in the repository.
    expect(git(repo.dir, "cat-file", "-e", first)).rejects.toThrow();
    expect((await packDir(repo.dir)).filter((f) => f.startsWith("tmp_"))).toEqual([]);
  });

  test("an incremental fetch receives only the changed objects, and native git still finds the repository consistent", async () => {
    const { root, work, first, reposRoot } = await site(200);
    const server = await serve({ root: reposRoot });
    const repo = await initRepository(join(root, "checkout"), server.url("site.git"));
    const cold = await fetchRef(repo, options(server.url("site.git")));
    await setHead(repo, REF, first);
    const second = await commitFiles(work, { "pages/p7.html": "changed\n" }, "second");
    await push(work);

    const warm = await fetchRef(repo, options(server.url("site.git")));

    expect(warm.commit).toBe(second);
    expect(warm.bytesReceived * 20).toBeLessThan(cold.bytesReceived);
    await setHead(repo, REF, second);
    await git(repo.dir, "fsck", "--strict", "--no-dangling");
    expect(await git(repo.dir, "cat-file", "-p", `${second}:pages/p7.html`)).toBe("changed");
    // The thin pack was completed: every pack stands alone, as git requires.
    for (const pack of (await packDir(repo.dir)).filter((f) => f.endsWith(".pack"))) {
      await git(repo.dir, "verify-pack", join(".git/objects/pack", pack));
    }
  });

  test("tells the caller how many objects each pack holds as its header arrives: the whole tree first, then only the change", async () => {
    const { root, work, reposRoot } = await site(60);
    const server = await serve({ root: reposRoot });
    const repo = await initRepository(join(root, "checkout"), server.url("site.git"));
    const counts: number[] = [];
    const counted = { ...options(server.url("site.git")), onPackObjects: (n: number) => counts.push(n) };

    await setHead(repo, REF, (await fetchRef(repo, counted)).commit);
    await commitFiles(work, { "pages/p7.html": "changed\n" }, "second");
    await push(work);
    await fetchRef(repo, counted);

    // 60 files, the root and pages/ trees, the commit; then one file, two trees, one commit.
    expect(counts).toEqual([63, 4]);
  });

  test("a pushed commit behind the ref's tip is still found, by fetching deeper", async () => {
    const { root, work, reposRoot } = await site();
    const pushed = await commitFiles(work, { "pages/p1.html": "pushed\n" }, "pushed");
    await commitFiles(work, { "pages/p2.html": "later\n" }, "later");
    await push(work);
    const server = await serve({ root: reposRoot });
    const repo = await initRepository(join(root, "checkout"), server.url("site.git"));

    const result = await fetchRef(repo, options(server.url("site.git"), pushed));

    expect(result.commit).toBe(pushed);
    await setHead(repo, REF, pushed);
    await git(repo.dir, "fsck", "--no-dangling");
  });

  test("a connection cut in the middle of the pack fails the fetch and leaves no pack, no temp file and no ref", async () => {
    const { root, reposRoot } = await site(200);
    const upstream = await startGitServer({ root: reposRoot });
    let cut = false;
    const cutting = await serve({
      root: reposRoot,
      async onRequest(req) {
        const url = new URL(req.url);
        const res = await fetch(`http://127.0.0.1:${upstream.port}${url.pathname}${url.search}`, { method: req.method, headers: req.headers, body: req.body });
        if (req.method !== "POST") return res;
        // Forward the first 4 KB of the pack response, then drop the connection.
        const reader = res.body!.getReader();
        let sent = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const { done, value } = await reader.read();
            if (done) {
              controller.close();
              return;
            }
            if (sent + value.length > 4_000) {
              controller.enqueue(value.subarray(0, 4_000 - sent));
              cut = true;
              controller.error(new Error("connection cut"));
              return;
            }
            sent += value.length;
            controller.enqueue(value);
          },
        });
        return new Response(body, { status: res.status, headers: res.headers });
      },
    });
    try {
      const repo = await initRepository(join(root, "checkout"), cutting.url("site.git"));
      const before = await packDir(repo.dir);

      const err = await fetchRef(repo, options(cutting.url("site.git"))).catch((e: unknown) => e);

      expect(cut).toBe(true);
      expect(err).toBeInstanceOf(GitError);
      expect((err as GitError).code).toBe("FETCH_FAILED");
      expect(await packDir(repo.dir)).toEqual(before);
      expect(await readdir(join(repo.gitdir, "refs/heads"))).toEqual([]);
      expect(await readdir(repo.gitdir)).not.toContain("shallow");
    } finally {
      await upstream.stop();
    }
  });
});

describe("consolidatePacks", () => {
  test("after many incremental fetches the small packs are merged into one, and native git still finds every object", async () => {
    const { root, work, reposRoot } = await site(20);
    const server = await serve({ root: reposRoot });
    const repo = await initRepository(join(root, "checkout"), server.url("site.git"));
    let commit = (await fetchRef(repo, options(server.url("site.git")))).commit;
    await setHead(repo, REF, commit);
    const packsAfter: number[] = [];
    for (let i = 0; i < 20; i++) {
      await commitFiles(work, { [`pages/p${i}.html`]: `version ${i}\n` }, `change ${i}`);
      await push(work);
      commit = (await fetchRef(repo, options(server.url("site.git")))).commit;
      await setHead(repo, REF, commit);
      packsAfter.push((await packDir(repo.dir)).filter((f) => f.endsWith(".pack")).length);
    }

    // One more pack per fetch up to 16; the fetch that makes 17 merges all but the first snapshot into one.
    expect(packsAfter.slice(0, 15)).toEqual(Array.from({ length: 15 }, (_, i) => i + 2));
    expect(packsAfter.slice(15)).toEqual([2, 3, 4, 5, 6]);
    await git(repo.dir, "fsck", "--strict", "--no-dangling");
    for (const pack of (await packDir(repo.dir)).filter((f) => f.endsWith(".pack"))) {
      await git(repo.dir, "verify-pack", join(".git/objects/pack", pack));
    }
    expect((await packDir(repo.dir)).filter((f) => f.startsWith("tmp_"))).toEqual([]);
    expect(await git(repo.dir, "cat-file", "-p", `${commit}:pages/p19.html`)).toBe("version 19");
  });
});

describe("fetchRef against a misbehaving remote", () => {
  const pkt = (line: string) => (line.length + 4).toString(16).padStart(4, "0") + line;

  test.each([
    ["refuses the request with an ERR packet", "the remote refused: access denied", () => new Response(pkt("ERR access denied\n"), { headers: { "content-type": "application/x-git-upload-pack-result" } })],
    ["reports a failure on side-band 3", "the remote failed: pack-objects died", () => new Response("0000" + pkt("NAK\n") + pkt("\x03pack-objects died\n"), { headers: { "content-type": "application/x-git-upload-pack-result" } })],
    ["answers HTTP 500", "HTTP 500", () => new Response("boom", { status: 500 })],
  ])("a remote that %s fails with FETCH_FAILED naming the cause, and writes nothing", async (_what, message, answer) => {
    const { root, reposRoot } = await site(5);
    const server = await serve({ root: reposRoot, onRequest: (req) => (req.method === "POST" ? answer() : undefined) });
    const repo = await initRepository(join(root, "checkout"), server.url("site.git"));
    const before = await packDir(repo.dir);

    const err = await fetchRef(repo, options(server.url("site.git"))).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(GitError);
    expect((err as GitError).code).toBe("FETCH_FAILED");
    expect((err as GitError).message).toContain(message);
    expect(await packDir(repo.dir)).toEqual(before);
    expect(await readdir(join(repo.gitdir, "refs/heads"))).toEqual([]);
  });

  test("a dumb HTTP server is refused with a clear message", async () => {
    const { root, reposRoot } = await site(5);
    const server = await serve({ root: reposRoot, onRequest: () => new Response("not git\n", { headers: { "content-type": "text/plain" } }) });
    const repo = await initRepository(join(root, "checkout"), server.url("site.git"));

    const err = await fetchRef(repo, options(server.url("site.git"))).catch((e: unknown) => e);

    expect((err as GitError).code).toBe("FETCH_FAILED");
    expect((err as GitError).message).toContain("not a smart HTTP git server");
  });
});
