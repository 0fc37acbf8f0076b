import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { appendFile, lstat, mkdir, readdir, readFile, readlink, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LoadedTarget } from "../../src/config/loaded-target.ts";
import { newDeployId } from "../../src/deploy/deploy-id.ts";
import { runDeploy } from "../../src/deploy/pipeline.ts";
import { claimRecyclableRelease } from "../../src/publish/claim-recyclable-release.ts";
import { releaseLayout } from "../../src/publish/release-layout.ts";
import { listReleases, readCurrentRelease } from "../../src/publish/releases.ts";
import { cleanEnv, runCliProcess } from "../cli/support.ts";
import { captureLog, commitAndPush, createSite, deployFailing, deployOnce, expectFreshCheckout, listing, makeTarget, removeSites, type Site } from "../helpers/deploy-fixture.ts";
import { makeTempDir } from "../helpers/git-fixture.ts";

setDefaultTimeout(120_000);
afterAll(removeSites);

const releaseIds = async (site: Site) => (await readdir(join(site.dir, "releases"))).sort();
const current = (site: Site) => readlink(join(site.dir, "current"));
const hooksd = (args: string[]) => runCliProcess(args, cleanEnv());

/** Deploys `count` commits of the pages and a changing index.html; returns the releases made. */
async function deployVersions(site: Site, target: LoadedTarget, count: number): Promise<string[]> {
  const made: string[] = [];
  for (let n = 1; n <= count; n++) {
    await commitAndPush(site, { ...pages, "index.html": `v${n}` }, `v${n}`);
    made.push((await deployOnce(target)).release!);
  }
  return made;
}

const pages = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`pages/p${i}.html`, `page ${i}`]));

describe("an atomic deploy in steady state", () => {
  test("recycles the oldest release its prune would remove, and the result equals a fresh checkout of the commit", async () => {
    const site = await createSite("recycle-steady");
    const target = makeTarget(site, { keep: 3 });
    // The tree changes shape between the recycled release's commit and the new one:
    // a file becomes a directory and back, an exec bit flips, a symlink moves, a directory empties.
    const commits = [
      await commitAndPush(site, { ...pages, "index.html": "v1", swap: "a file", "tree/x.txt": "x", "bin/run": "#!/bin/sh\n", link: { symlink: "index.html" }, "gone/only.txt": "only", "ln2file": { symlink: "pages" } }, "v1"),
    ];
    const made = [await deployOnce(target)];
    for (let n = 2; n <= 3; n++) {
      commits.push(await commitAndPush(site, { "index.html": `v${n}` }, `v${n}`));
      made.push(await deployOnce(target));
    }
    expect(made.map((m) => m.recycledFrom)).toEqual([undefined, undefined, undefined]);
    const oldest = made[0]!.release!;
    const keptInode = (await stat(join(site.dir, "releases", oldest, "pages/p1.html"))).ino;

    commits.push(
      await commitAndPush(
        site,
        { "index.html": "v4", swap: null, "swap/inner.txt": "now a dir", "tree/x.txt": null, tree: "now a file", "bin/run": { content: "#!/bin/sh\n", mode: 0o755 }, link: { symlink: "pages/p0.html" }, "gone/only.txt": null, ln2file: "was a symlink", "new/deep/file.txt": "added" },
        "v4",
      ),
    );
    const fourth = await deployOnce(target);

    expect(fourth.recycledFrom).toBe(oldest);
    // Three deploys pruned nothing and the fourth took the only prunable release.
    expect(await releaseIds(site)).toEqual([made[1]!.release!, made[2]!.release!, fourth.release!]);
    expect(await current(site)).toBe(`releases/${fourth.release}`);
    await expectFreshCheckout(join(site.dir, "current"), site, commits[3]!);
    // Files the two commits share stayed where they were: recycled, not copied.
    expect((await stat(join(site.dir, "current", "pages/p1.html"))).ino).toBe(keptInode);
    // v1 → v4: index.html, swap, swap/inner.txt, tree/x.txt, tree, bin/run, link, gone/only.txt, ln2file, new/deep/file.txt.
    // Written: the 7 paths v4 has among them; kept: the 20 pages.
    expect({ written: fourth.changedPaths, reused: fourth.reusedFiles }).toEqual({ written: 7, reused: 20 });
    expect((await readCurrentRelease(releaseLayout(site.dir)))?.commit).toBe(commits[3]!);

    // Rollback still finds the release before, whole.
    const stateDir = await makeTempDir("recycle-steady-state");
    const back = await hooksd(["rollback", "--repo", site.dir, "--state-dir", stateDir]);
    expect(back.exitCode).toBe(0);
    expect(await current(site)).toBe(`releases/${made[2]!.release}`);
    await expectFreshCheckout(join(site.dir, "current"), site, commits[2]!);
  });

  test("takes the newest of several prunable releases, and the prune removes the others", async () => {
    const site = await createSite("recycle-newest");
    const made = await deployVersions(site, makeTarget(site, { keep: 10 }), 5);
    const v6 = await commitAndPush(site, { "index.html": "v6" }, "v6");
    const sixth = await deployOnce(makeTarget(site, { keep: 3 }));
    // Prunable after the switch: 1, 2, 3 (kept: the newest three, 4, 5, 6); the newest of them is recycled.
    expect(sixth.recycledFrom).toBe(made[2]!);
    expect(await releaseIds(site)).toEqual([made[3]!, made[4]!, sixth.release!]);
    await expectFreshCheckout(join(site.dir, "current"), site, v6);
  });

  test("never lets files a hook added, modified, chmodded, replaced or deleted in the recycled release leak into the new one", async () => {
    const site = await createSite("recycle-leak");
    const outside = await makeTempDir("recycle-outside");
    await mkdir(join(outside, "assets"));
    await writeFile(join(outside, "assets", "logo.svg"), "not ours");
    const hooks = await makeTempDir("recycle-hooks");
    // Everything a hook (or a person) can do to a release after it was sealed.
    await writeFile(
      join(hooks, "post-deploy"),
      `#!/bin/sh
set -e
echo untracked > untracked.txt
mkdir -p cache/deep && echo x > cache/deep/file
ln -s /etc passwd-dir
printf 'HACKED!' > same-size.txt && touch -d '2001-01-01 00:00:00' same-size.txt
echo more >> pages/p2.html
chmod +x pages/p3.html
chmod 600 pages/p4.html
rm pages/p5.html && ln -s p6.html pages/p5.html
rm -r assets && ln -s "${outside}/assets" assets
rm pages/p7.html && mkdir pages/p7.html && echo inner > pages/p7.html/inner
rm pages/p8.html
rm -r docs
rm link && echo not-a-link > link
rm bin/run && mkdir bin/run
ln pages/p9.html "${outside}/hardlink"
mkfifo fifo
chmod 700 pages
`,
      { mode: 0o755 },
    );
    const v1 = await commitAndPush(
      site,
      { ...pages, "index.html": "v1", "same-size.txt": "regular", "assets/logo.svg": "<svg/>", "assets/css/site.css": "body{}", "docs/guide.md": "guide", link: { symlink: "index.html" }, "bin/run": { content: "#!/bin/sh\n", mode: 0o755 } },
      "v1",
    );
    const first = await deployOnce(makeTarget(site, { keep: 3, hooksDir: hooks }));
    const tampered = join(site.dir, "releases", first.release!);
    expect(await readFile(join(tampered, "same-size.txt"), "utf8")).toBe("HACKED!");
    expect((await lstat(join(tampered, "assets"))).isSymbolicLink()).toBe(true);

    const outsideBefore = await listing(outside);

    // Built afresh by copying from the tampered release: nothing of the hook's either.
    const target = makeTarget(site, { keep: 3 });
    for (let n = 2; n <= 3; n++) {
      const commit = await commitAndPush(site, { "index.html": `v${n}` }, `v${n}`);
      expect((await deployOnce(target)).recycledFrom).toBeUndefined();
      await expectFreshCheckout(join(site.dir, "current"), site, commit);
    }
    const v4 = await commitAndPush(site, { "index.html": "v4" }, "v4");
    const fourth = await deployOnce(target);

    expect(fourth.recycledFrom).toBe(first.release!);
    await expectFreshCheckout(join(site.dir, "current"), site, v4);
    // The recycled release's walk never went through the symlinks the hook planted.
    expect(await listing(outside)).toEqual(outsideBefore);
    expect(await readFile(join(outside, "assets", "logo.svg"), "utf8")).toBe("not ours");
    // The hard-linked file was rewritten, not shared: a write into the new release stays there.
    const newP9 = join(site.dir, "current", "pages/p9.html");
    expect((await stat(newP9)).nlink).toBe(1);
    await appendFile(newP9, " changed");
    expect(await readFile(join(outside, "hardlink"), "utf8")).toBe("page 9");
    // 13 untouched pages stayed; index.html, same-size.txt, p2-p5, p7-p9, assets (2), docs, link and bin/run were written.
    expect({ written: fourth.changedPaths, reused: fourth.reusedFiles }).toEqual({ written: 14, reused: 13 });
  });
});

const movedDirHook = "#!/bin/sh\nset -e\nrm -r dirB && mv dirA dirB\n";
// Tracked under both names, with the same paths and other content: after the hook, dirB holds dirA's files, their ctimes older than the seal.
const twoDirs = { "dirA/x.html": "A x", "dirA/sub/y.html": "A y", "dirB/x.html": "B x", "dirB/sub/y.html": "B y" };

describe("an atomic deploy in steady state, after a hook moved a directory", () => {
  test("never keeps the files of a directory a hook moved into another's place (rm -r dirB && mv dirA dirB)", async () => {
    const site = await createSite("recycle-moved-dir");
    const hooks = await makeTempDir("recycle-moved-hooks");
    await writeFile(join(hooks, "post-deploy"), movedDirHook, { mode: 0o755 });
    await commitAndPush(site, { ...pages, ...twoDirs, "index.html": "v1" }, "v1");
    const first = await deployOnce(makeTarget(site, { keep: 3, hooksDir: hooks }));
    expect(await readFile(join(site.dir, "releases", first.release!, "dirB/sub/y.html"), "utf8")).toBe("A y");

    const target = makeTarget(site, { keep: 3 });
    for (let n = 2; n <= 3; n++) {
      const commit = await commitAndPush(site, { "index.html": `v${n}` }, `v${n}`);
      await deployOnce(target);
      await expectFreshCheckout(join(site.dir, "current"), site, commit);
    }
    const v4 = await commitAndPush(site, { "index.html": "v4" }, "v4");
    const fourth = await deployOnce(target);

    expect(fourth.recycledFrom).toBe(first.release!);
    await expectFreshCheckout(join(site.dir, "current"), site, v4);
    // dirA and dirB (2 files each) and index.html written; the 20 pages kept.
    expect({ written: fourth.changedPaths, reused: fourth.reusedFiles }).toEqual({ written: 5, reused: 20 });
  });
});

describe("recycling", () => {
  test("never takes the current release or the one before it, and a failed deploy leaves current and rollback intact", async () => {
    const site = await createSite("recycle-failed");
    const commits: string[] = [];
    const made: string[] = [];
    for (let n = 1; n <= 5; n++) {
      commits.push(await commitAndPush(site, { ...pages, "index.html": `v${n}` }, `v${n}`));
      made.push((await deployOnce(makeTarget(site, { keep: 10 }))).release!);
    }
    const [a, b, c, d, e] = made as [string, string, string, string, string];
    const stateDir = await makeTempDir("recycle-failed-state");
    expect((await hooksd(["rollback", "--repo", site.dir, "--to", c, "--state-dir", stateDir])).exitCode).toBe(0);

    // Serving c (rolled back), keep 3: the prune after a switch would remove a, b and c. Only a may be recycled:
    // c serves, and b is where a rollback from c goes if this deploy fails.
    const hooks = await makeTempDir("recycle-failed-hooks");
    await writeFile(join(hooks, "pre-deploy"), "#!/bin/sh\necho refusing >&2\nexit 1\n", { mode: 0o755 });
    await commitAndPush(site, { "index.html": "v6" }, "v6");
    const { error } = await deployFailing(makeTarget(site, { keep: 3, hooksDir: hooks }));
    expect(error.code).toBe("HOOK_FAILED");

    expect(await current(site)).toBe(`releases/${c}`);
    await expectFreshCheckout(join(site.dir, "current"), site, commits[2]!);
    // a was recycled and went with the failed deploy; nothing of that deploy is left.
    expect(await releaseIds(site)).toEqual([b, c, d, e]);
    expect((await listReleases(releaseLayout(site.dir))).map((r) => r.id)).toEqual([b, c, d, e]);
    const back = await hooksd(["rollback", "--repo", site.dir, "--state-dir", stateDir]);
    expect(back.exitCode).toBe(0);
    expect(await current(site)).toBe(`releases/${b}`);
    await expectFreshCheckout(join(site.dir, "current"), site, commits[1]!);

    // Serving b, the oldest: the prune after a switch would remove b and c; b serves, so c is recycled.
    const v7 = await commitAndPush(site, { "index.html": "v7" }, "v7");
    const next = await deployOnce(makeTarget(site, { keep: 3 }));
    expect(next.recycledFrom).toBe(c);
    await expectFreshCheckout(join(site.dir, "current"), site, v7);
  });

  test("never takes a release sealed without directory identities (by an older hooksd), nor copies from one, and sweeps identities left without a release", async () => {
    const site = await createSite("recycle-no-dirs");
    const target = makeTarget(site, { keep: 3 });
    const made = await deployVersions(site, target, 3);
    const markers = join(site.dir, ".hooksd", "releases");
    // Every sealed release has its directory identities beside its marker.
    expect((await readdir(markers)).sort()).toEqual(made.flatMap((id) => [`${id}.dirs`, `${id}.json`]));
    // As an older hooksd left them: the recyclable release and the serving one (the copy's base) without.
    await rm(join(markers, `${made[0]}.dirs`));
    await rm(join(markers, `${made[2]}.dirs`));
    // Left by a kill inside unsealRelease: identities whose release is gone.
    await writeFile(join(markers, "20200101T000000000Z-0000-dead00.dirs"), "[]");

    const v4 = await commitAndPush(site, { "index.html": "v4" }, "v4");
    const fourth = await deployOnce(target);

    expect(fourth.recycledFrom).toBeUndefined();
    expect({ written: fourth.changedPaths, reused: fourth.reusedFiles }).toEqual({ written: 21, reused: 0 });
    await expectFreshCheckout(join(site.dir, "current"), site, v4);
    const kept = [made[1]!, made[2]!, fourth.release!];
    expect(await releaseIds(site)).toEqual(kept);
    expect((await readdir(markers)).sort()).toEqual([`${made[1]}.dirs`, `${made[1]}.json`, `${made[2]}.json`, `${fourth.release}.dirs`, `${fourth.release}.json`]);
  });

  for (const keep of [1, 2]) {
    test(`with keep ${keep} never happens (the only releases are current and the one before it), and every deploy builds afresh`, async () => {
      const site = await createSite(`recycle-keep${keep}`);
      const target = makeTarget(site, { keep });
      const made = [];
      let last = "";
      for (let n = 1; n <= 5; n++) {
        last = await commitAndPush(site, { ...pages, "index.html": `v${n}` }, `v${n}`);
        made.push(await deployOnce(target));
      }
      expect(made.map((m) => m.recycledFrom)).toEqual([undefined, undefined, undefined, undefined, undefined]);
      expect(await releaseIds(site)).toEqual([made[3]!.release!, made[4]!.release!]);
      await expectFreshCheckout(join(site.dir, "current"), site, last);
    });
  }

  test("hides the claimed release from rollback at once, keeps it from another prune, and the redo of a deploy killed after the claim removes it", async () => {
    const site = await createSite("recycle-claim");
    const target = makeTarget(site, { keep: 3 });
    const made = await deployVersions(site, target, 3);
    const layout = releaseLayout(site.dir);
    // Old enough that prune's one-hour rule would take it for a crash's leftover, were it not touched when claimed.
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(join(site.dir, "releases", made[0]!), twoHoursAgo, twoHoursAgo);
    const killed = newDeployId();
    const claimed = await claimRecyclableRelease(layout, { id: killed, base: await readCurrentRelease(layout), keep: 3 });
    expect(claimed?.release.id).toBe(made[0]!);
    expect(await releaseIds(site)).toEqual([made[1]!, made[2]!, killed]);
    expect((await listReleases(layout)).map((r) => r.id)).toEqual([made[1]!, made[2]!]);

    const stateDir = await makeTempDir("recycle-claim-state");
    const refused = await hooksd(["rollback", "--repo", site.dir, "--to", made[0]!, "--state-dir", stateDir]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain(`--to: no release ${made[0]}`);
    expect(await current(site)).toBe(`releases/${made[2]}`);

    // Another process's deploy publishes meanwhile: its prune leaves the directory being rebuilt alone.
    const other = await deployOnce(target);
    expect(await releaseIds(site)).toContain(killed);

    // The deploy that claimed it is killed; the restart redoes it.
    const v5 = await commitAndPush(site, { "index.html": "v5" }, "v5");
    const redo = await runDeploy(target, { ref: "refs/heads/main", commit: undefined, redoes: { id: killed, startedAt: undefined } }, { id: newDeployId(), log: captureLog().log });
    expect(await releaseIds(site)).not.toContain(killed);
    expect(await releaseIds(site)).toEqual([made[2]!, other.release!, redo.release!]);
    await expectFreshCheckout(join(site.dir, "current"), site, v5);
  });
});
