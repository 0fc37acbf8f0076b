import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { appendFile, lstat, mkdir, readdir, readFile, readlink, realpath, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createDeployer } from "../../src/deploy/deployer.ts";
import { newDeployId } from "../../src/deploy/deploy-id.ts";
import { runDeploy } from "../../src/deploy/pipeline.ts";
import { releaseLayout } from "../../src/publish/release-layout.ts";
import { listReleases } from "../../src/publish/releases.ts";
import { createMemoryHistory } from "../../src/state/history.ts";
import { captureLog, createSite, deployFailing, deployOnce, makeTarget, removeSites, type Site } from "../helpers/deploy-fixture.ts";
import { commitFiles, expectTreeEquals, makeTempDir, push } from "../helpers/git-fixture.ts";

setDefaultTimeout(120_000);
afterAll(removeSites);
const newSite = (prefix: string) => createSite(prefix);

const releaseIds = async (site: Site) => (await readdir(join(site.dir, "releases"))).sort();

describe("an atomic deploy", () => {
  test("writes a release, points current at it with a relative link, and keeps git outside every release", async () => {
    const site = await newSite("atomic-layout");
    const commit = await commitFiles(site.work, { "index.html": "hello", "css/site.css": "body{}", "bin/run": { content: "#!/bin/sh\n", mode: 0o755 }, "link": { symlink: "index.html" } }, "v1");
    await push(site.work);

    const outcome = await deployOnce(makeTarget(site));
    expect(await readlink(join(site.dir, "current"))).toBe(`releases/${outcome.release}`);
    await expectTreeEquals(join(site.dir, "current"), site.bare, commit);
    expect((await readdir(site.dir)).sort()).toEqual([".hooksd", "current", "releases"]);
    expect((await stat(join(site.dir, ".hooksd", "repo.git", "objects"))).isDirectory()).toBe(true);
    expect(await listReleases(releaseLayout(site.dir))).toEqual([expect.objectContaining({ id: outcome.release, commit, ref: "refs/heads/main" })]);
  });

  test("copies unchanged files from the previous release, never linking them, so a hook's edit stays in its release", async () => {
    const site = await newSite("atomic-reuse");
    const files = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`pages/p${i}.html`, `page ${i}`]));
    await commitFiles(site.work, { ...files, "index.html": "v1" }, "v1");
    await push(site.work);
    const out = await makeTempDir("reuse-hooks");
    await writeFile(join(out, "post-checkout"), `#!/bin/sh\necho "edited by the hook" >> pages/p0.html\n`, { mode: 0o755 });
    const target = makeTarget(site, { hooksDir: out });
    const first = await deployOnce(target);

    const v2 = await commitFiles(site.work, { "index.html": "v2" }, "v2");
    await push(site.work);
    const second = await deployOnce({ ...target, hooksDir: undefined });
    // p0.html was edited after release 1 was sealed: written from git, not copied.
    expect({ written: second.changedPaths, reused: second.reusedFiles }).toEqual({ written: 2, reused: 19 });
    await expectTreeEquals(join(site.dir, "current"), site.bare, v2);

    const oldFile = join(site.dir, "releases", first.release!, "pages/p1.html");
    const newFile = join(site.dir, "releases", second.release!, "pages/p1.html");
    expect((await stat(newFile)).ino).not.toBe((await stat(oldFile)).ino);
    expect((await stat(newFile)).nlink).toBe(1);
    await appendFile(newFile, "changed in the new release");
    expect(await readFile(oldFile, "utf8")).toBe("page 1");
    expect(await readFile(join(site.dir, "releases", first.release!, "pages/p0.html"), "utf8")).toBe("page 0edited by the hook\n");
  });

  test("never copies the files of a directory a hook moved into another's place (rm -r dirB && mv dirA dirB) in the previous release", async () => {
    const site = await newSite("atomic-moved-dir");
    const pages = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`pages/p${i}.html`, `page ${i}`]));
    // Same paths, other content: after the hook dirB holds dirA's files, and their ctimes are older than the seal.
    await commitFiles(site.work, { ...pages, "dirA/x.html": "A x", "dirA/sub/y.html": "A y", "dirB/x.html": "B x", "dirB/sub/y.html": "B y", "index.html": "v1" }, "v1");
    await push(site.work);
    const hooks = await makeTempDir("moved-dir-hooks");
    await writeFile(join(hooks, "post-deploy"), "#!/bin/sh\nset -e\nrm -r dirB && mv dirA dirB\n", { mode: 0o755 });
    const first = await deployOnce(makeTarget(site, { hooksDir: hooks }));
    expect(await readFile(join(site.dir, "releases", first.release!, "dirB/x.html"), "utf8")).toBe("A x");

    const v2 = await commitFiles(site.work, { "index.html": "v2" }, "v2");
    await push(site.work);
    const second = await deployOnce(makeTarget(site));

    await expectTreeEquals(join(site.dir, "current"), site.bare, v2);
    // dirA is gone and dirB is not the directory sealed there: both written, with index.html; the pages copied.
    expect({ written: second.changedPaths, reused: second.reusedFiles }).toEqual({ written: 5, reused: 10 });
  });

  test("a reader resolving current through dozens of deploys never sees a missing link or a mixed release", async () => {
    const site = await newSite("atomic-reader");
    const files = ["index.html", "css/site.css", "js/app/main.js", "deep/a/b/c/d.txt"];
    const version = (n: number) => Object.fromEntries(files.map((f) => [f, `version ${n}`]));
    await commitFiles(site.work, version(0), "v0");
    await push(site.work);
    const target = makeTarget(site, { keep: 100 });
    await deployOnce(target);

    const reader = Bun.spawn([process.execPath, join(import.meta.dir, "read-current-loop.ts"), site.dir, ...files], { stdout: "pipe", stderr: "inherit" });
    const deploys = 30;
    for (let n = 1; n <= deploys; n++) {
      // Some deploys also add and remove files, so releases differ in shape too.
      await commitFiles(site.work, { ...version(n), [`extra/${n}.txt`]: "x", [`extra/${n - 1}.txt`]: null }, `v${n}`);
      await push(site.work);
      await deployOnce(target);
    }
    await writeFile(join(site.dir, "stop"), "");
    const summary = JSON.parse(await new Response(reader.stdout).text()) as { reads: number; releasesSeen: number; versionsSeen: string[]; problems: string[] };
    expect(await reader.exited).toBe(0);

    expect(summary.problems).toEqual([]);
    // The reader really did read across switches, not one release the whole time.
    expect(summary.reads).toBeGreaterThan(deploys);
    expect(summary.releasesSeen).toBeGreaterThan(1);
    expect(await readFile(join(site.dir, "current", "index.html"), "utf8")).toBe(`version ${deploys}`);
  });

  test("keeps --keep releases and never prunes the current or the previous one", async () => {
    const site = await newSite("atomic-keep");
    const target = makeTarget(site, { keep: 3 });
    const made: string[] = [];
    for (let n = 1; n <= 5; n++) {
      await commitFiles(site.work, { "index.html": `v${n}` }, `v${n}`);
      await push(site.work);
      made.push((await deployOnce(target)).release!);
    }
    expect(await releaseIds(site)).toEqual(made.slice(-3));
    expect((await listReleases(releaseLayout(site.dir))).map((r) => r.id)).toEqual(made.slice(-3));

    // keep 1 still keeps what a rollback needs.
    await commitFiles(site.work, { "index.html": "v6" }, "v6");
    await push(site.work);
    made.push((await deployOnce({ ...target, keep: 1 })).release!);
    expect(await releaseIds(site)).toEqual(made.slice(-2));
  });

  test("the redo of a deploy killed before its switch removes that deploy's release, unsealed or sealed, but never the one serving (crash harness, atomic seed 6001 trial 3)", async () => {
    const site = await newSite("atomic-redo");
    const target = makeTarget(site, { keep: 10 });
    await commitFiles(site.work, { "index.html": "v1" }, "v1");
    await push(site.work);
    const serving = (await deployOnce(target)).release!;
    const layout = releaseLayout(site.dir);
    const redo = (redoes: string) => runDeploy(target, { ref: "refs/heads/main", commit: undefined, redoes: { id: redoes, startedAt: undefined } }, { id: newDeployId(), log: captureLog().log });

    // Killed mid-materialization: an unsealed directory with a temp file in it.
    const unsealed = "20261122T000000000Z-0000-aaaaaa";
    await mkdir(join(site.dir, "releases", unsealed, "css"), { recursive: true });
    await writeFile(join(site.dir, "releases", unsealed, "css", ".hooksd-tmp-999999-abc"), "half");
    const first = (await redo(unsealed)).release!;
    expect(await releaseIds(site)).toEqual([serving, first]);

    // Killed between sealing and the switch: sealed, never served; rollback must not find it.
    const sealed = "20261122T000000001Z-0000-bbbbbb";
    await mkdir(join(site.dir, "releases", sealed));
    await writeFile(join(layout.markers, `${sealed}.json`), JSON.stringify({ id: sealed, commit: "0".repeat(40), ref: "refs/heads/main", createdAt: new Date().toISOString() }));
    const second = (await redo(sealed)).release!;
    expect((await listReleases(layout)).map((r) => r.id)).toEqual([serving, first, second]);

    // Killed after the switch (pruning, hooks): the release serves, and stays.
    const third = (await redo(second)).release!;
    expect((await listReleases(layout)).map((r) => r.id)).toEqual([serving, first, second, third]);
  });
});

describe("a health check", () => {
  test("that fails switches back to the previous release and marks the deploy rolled back", async () => {
    const site = await newSite("atomic-health");
    // The "application": healthy while the served release says so.
    const app = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: async () => {
        const health = await readFile(join(site.dir, "current", "health.txt"), "utf8").catch(() => "missing");
        return new Response(health, { status: health === "ok" ? 200 : 503 });
      },
    });
    try {
      const v1 = await commitFiles(site.work, { "health.txt": "ok", "index.html": "v1" }, "v1");
      await push(site.work);
      const out = await makeTempDir("health-out");
      await writeFile(join(out, "deploy-failed"), `#!/bin/sh\nprintf '%s' "$HOOKSD_ERROR" > "${out}/error"\n`, { mode: 0o755 });
      const target = makeTarget(site, { healthUrl: `${app.url.href}healthz`, healthTimeoutSeconds: 2, hooksDir: out });
      const history = createMemoryHistory();
      const { log } = captureLog();
      const deployer = createDeployer({ targets: [target], history, log });

      const good = deployer.submit("site", { ref: "refs/heads/main", commit: undefined });
      await deployer.idle();
      expect(history.get(good.id)).toMatchObject({ state: "succeeded", commit: v1, release: good.id });
      const serving = await readlink(join(site.dir, "current"));

      await commitFiles(site.work, { "health.txt": "database unreachable", "index.html": "v2" }, "v2");
      await push(site.work);
      const bad = deployer.submit("site", { ref: "refs/heads/main", commit: undefined });
      await deployer.idle();

      const record = history.get(bad.id)!;
      expect(record.state).toBe("rolled-back");
      expect(record.error).toContain("health check failed");
      expect(record.error).toContain("HTTP 503");
      expect(record.hooks?.map((h) => h.hook)).toEqual(["deploy-failed"]);
      expect(record.hookOutput).toStartWith(`--- deploy-failed (${join(out, "deploy-failed")}) exited with status 0\n`);
      expect(await readFile(join(out, "error"), "utf8")).toBe(record.error!);
      expect(await readlink(join(site.dir, "current"))).toBe(serving);
      await expectTreeEquals(join(site.dir, "current"), site.bare, v1);
      expect(await releaseIds(site)).toEqual([good.id]);
      const [status] = await deployer.status();
      expect(status?.deployedCommit).toBe(v1);
    } finally {
      await app.stop(true);
    }
  });

  test("that passes publishes the release", async () => {
    const site = await newSite("atomic-health-ok");
    const app = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("ok") });
    try {
      const v1 = await commitFiles(site.work, { "index.html": "v1" }, "v1");
      await push(site.work);
      await deployOnce(makeTarget(site, { healthUrl: app.url.href, healthTimeoutSeconds: 2 }));
      await expectTreeEquals(join(site.dir, "current"), site.bare, v1);
    } finally {
      await app.stop(true);
    }
  });

  test("on a first deploy that fails leaves nothing served", async () => {
    const site = await newSite("atomic-health-first");
    await commitFiles(site.work, { "index.html": "v1" }, "v1");
    await push(site.work);
    const { error } = await deployFailing(makeTarget(site, { healthUrl: "http://127.0.0.1:9/", healthTimeoutSeconds: 1 }));
    expect(error.code).toBe("HEALTH_CHECK_FAILED");
    expect(await lstat(join(site.dir, "current")).catch(() => undefined)).toBeUndefined();
    expect(await releaseIds(site)).toEqual([]);
  });
});

test("the release directory is a real directory, the store is not reachable through current", async () => {
  const site = await newSite("atomic-paths");
  await commitFiles(site.work, { "index.html": "v1" }, "v1");
  await push(site.work);
  const outcome = await deployOnce(makeTarget(site));
  const resolved = await realpath(join(site.dir, "current"));
  expect(resolved).toBe(await realpath(join(site.dir, "releases", outcome.release!)));
  expect(await readdir(resolved)).toEqual(["index.html"]);
});

test("leftovers of a crash — an unsealed release and a temporary link — are never served and are cleaned up later", async () => {
  const site = await newSite("atomic-crash");
  await commitFiles(site.work, { "index.html": "v1" }, "v1");
  await push(site.work);
  const target = makeTarget(site);
  const first = await deployOnce(target);

  // What a deploy killed before sealing, and one killed between symlink() and rename(), leave behind.
  const stale = join(site.dir, "releases", "20200101T000000000Z-0000-dead00");
  const fresh = join(site.dir, "releases", "29990101T000000000Z-0000-beef00");
  for (const dir of [stale, fresh]) {
    await mkdir(dir);
    await writeFile(join(dir, "index.html"), "half-written");
  }
  const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
  await utimes(stale, twoHoursAgo, twoHoursAgo);
  await symlink(`releases/${first.release}`, join(site.dir, ".current-12345-abc"));
  // Unsealed: neither is a release (the newer one would otherwise be "current's successor").
  expect((await listReleases(releaseLayout(site.dir))).map((r) => r.id)).toEqual([first.release!]);

  const v2 = await commitFiles(site.work, { "index.html": "v2" }, "v2");
  await push(site.work);
  const second = await deployOnce(target);
  await expectTreeEquals(join(site.dir, "current"), site.bare, v2);
  // The old leftover went; the recent one may still be another process's deploy in progress.
  expect(await releaseIds(site)).toEqual([first.release!, second.release!, "29990101T000000000Z-0000-beef00"].sort());
  expect((await readdir(site.dir)).filter((n) => n.startsWith(".current-"))).toEqual([]);
});
