/**
 * The walk that brings a recycled release to a new commit
 * (reconcile-recycled-tree.ts), through real deploys: a release is changed on
 * disk after its seal, the way a hook or a person could, then recycled by a
 * later deploy, which must equal a fresh checkout of its commit and keep, in
 * place, only what it can trust.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmod, mkdir, readdir, readFile, rename, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { commitAndPush, createSite, deployOnce, expectFreshCheckout, listing, makeTarget, removeSites, type Site } from "../helpers/deploy-fixture.ts";
import { git, makeTempDir, push, type FileSpec } from "../helpers/git-fixture.ts";

setDefaultTimeout(120_000);
afterAll(removeSites);

const pages = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`pages/p${i}.html`, `page ${i}`]));

interface Recycled {
  site: Site;
  /** The recycled release, now serving. */
  dir: string;
}

/**
 * Deploys `first` (keep 3) and two more commits, lets `tamper` change the
 * first release after its seal (it gets the release's directory), then deploys
 * `last`, which recycles the first release; asserts that, the fresh checkout,
 * that each of `kept` is still the same file (left in place, not rewritten),
 * and how many files were written and kept.
 */
async function recycleTampered(
  prefix: string,
  first: Record<string, FileSpec>,
  tamper: (release: string) => Promise<void>,
  last: Record<string, FileSpec>,
  options: { kept?: string[]; site?: Site; counts?: { written: number; reused: number } } = {},
): Promise<Recycled> {
  const site = options.site ?? (await createSite(prefix));
  const target = makeTarget(site, { keep: 3 });
  await commitAndPush(site, { ...pages, ...first, "index.html": "v1" }, "v1");
  const oldest = (await deployOnce(target)).release!;
  for (let n = 2; n <= 3; n++) {
    await commitAndPush(site, { "index.html": `v${n}` }, `v${n}`);
    await deployOnce(target);
  }
  const release = join(site.dir, "releases", oldest);
  const kept = await inodes(release, options.kept ?? []);
  await tamper(release);
  const commit = await commitAndPush(site, { ...last, "index.html": "v4" }, "v4");
  const outcome = await deployOnce(target);
  expect(outcome.recycledFrom).toBe(oldest);
  const dir = join(site.dir, "current");
  await expectFreshCheckout(dir, site, commit);
  expect(await inodes(dir, options.kept ?? [])).toEqual(kept);
  if (options.counts) expect({ written: outcome.changedPaths, reused: outcome.reusedFiles }).toEqual(options.counts);
  return { site, dir };
}

/** Inode numbers of `paths` under `dir`: a file kept in place keeps its inode, a rewritten one gets another. */
async function inodes(dir: string, paths: string[]): Promise<number[]> {
  return Promise.all(paths.map(async (p) => (await stat(join(dir, p))).ino));
}

describe("recycling a release", () => {
  test("swaps files and directories both ways, where the new commit does and where a hook did", async () => {
    await recycleTampered(
      "walk-swaps",
      { "becomes-dir": "a file", "becomes-file/x.txt": "x", "hook-dir": "a file", "hook-file/y.txt": "y" },
      async (release) => {
        // What the commits agree on, replaced on disk: a file by a directory, a directory by a file.
        await rm(join(release, "hook-dir"));
        await mkdir(join(release, "hook-dir"));
        await writeFile(join(release, "hook-dir", "inner"), "stray");
        await rm(join(release, "hook-file"), { recursive: true });
        await writeFile(join(release, "hook-file"), "stray");
      },
      { "becomes-dir": null, "becomes-dir/inner.txt": "now a dir", "becomes-file/x.txt": null, "becomes-file": "now a file" },
      // index.html, becomes-dir/inner.txt, becomes-file, hook-dir, hook-file/y.txt written; the 10 pages kept.
      { kept: ["pages/p0.html"], counts: { written: 5, reused: 10 } },
    );
  });

  test("never follows a symlink a hook put where a directory was, even where the new commit writes below it", async () => {
    const outside = await makeTempDir("walk-outside");
    await mkdir(join(outside, "css"));
    await writeFile(join(outside, "css", "site.css"), "not ours");
    await writeFile(join(outside, "css", "extra.css"), "not ours either");
    const before = await listing(outside);
    const { dir } = await recycleTampered(
      "walk-symlink",
      { "assets/css/site.css": "body{}", "assets/css/print.css": "@media print{}", "theme/css/site.css": "theme" },
      async (release) => {
        // One at the top of a subtree the new commit changes, one deep in a subtree it leaves alone.
        await rm(join(release, "assets", "css"), { recursive: true });
        await symlink(join(outside, "css"), join(release, "assets", "css"));
        await rm(join(release, "theme"), { recursive: true });
        await symlink(outside, join(release, "theme"));
      },
      { "assets/css/site.css": "body{color:red}" },
    );
    expect(await listing(outside)).toEqual(before);
    expect(await readFile(join(outside, "css", "site.css"), "utf8")).toBe("not ours");
    expect(await listing(join(dir, "assets"))).toEqual(["css dir 755", "css/print.css file 644", "css/site.css file 644"]);
  });

  test("leaves a submodule an empty directory: one a hook filled is emptied, one untouched stays as it was", async () => {
    const site = await createSite("walk-submodule");
    // Two submodules (gitlinks): native git checks each out as an empty directory.
    const pointer = await commitAndPush(site, { "index.html": "v0" }, "v0");
    for (const path of ["vendor/touched", "vendor/untouched"]) {
      await mkdir(join(site.work, path), { recursive: true });
      await git(site.work, "update-index", "--add", "--cacheinfo", `160000,${pointer},${path}`);
    }
    await git(site.work, "commit", "--quiet", "--no-verify", "-m", "submodules");
    await push(site.work);

    const { dir } = await recycleTampered(
      "walk-submodule",
      {},
      async (release) => {
        await writeFile(join(release, "vendor/touched/README"), "a hook wrote this");
      },
      { "pages/p0.html": "changed" },
      // index.html, p0 and the touched submodule written; 9 pages and the untouched submodule kept.
      { kept: ["vendor/untouched"], site, counts: { written: 3, reused: 10 } },
    );
    expect(await readdir(join(dir, "vendor/touched"))).toEqual([]);
  });

  test("flips the exec bit where the new commit does, and back where a hook did", async () => {
    const { dir } = await recycleTampered(
      "walk-exec",
      { "bin/run": { content: "#!/bin/sh\n", mode: 0o644 }, "bin/tool": { content: "#!/bin/sh\n", mode: 0o755 }, "bin/hooked": "#!/bin/sh\n" },
      async (release) => {
        await chmod(join(release, "bin/hooked"), 0o755);
      },
      { "bin/run": { content: "#!/bin/sh\n", mode: 0o755 }, "bin/tool": { content: "#!/bin/sh\n", mode: 0o644 } },
    );
    expect(await listing(join(dir, "bin"))).toEqual(["hooked file 644", "run file 755", "tool file 644"]);
  });

  test("rewrites a file a hook modified in a subtree the new commit leaves unchanged, and keeps its neighbours", async () => {
    const { dir } = await recycleTampered(
      "walk-modified",
      { "lib/deep/a.txt": "aaaa", "lib/deep/b.txt": "bbbb" },
      async (release) => {
        // Same size, old mtime: only the ctime tells; the directory itself is unchanged.
        const file = join(release, "lib/deep/a.txt");
        await writeFile(file, "AAAA");
        await utimes(file, new Date(2001, 0, 1), new Date(2001, 0, 1));
      },
      {},
      { kept: ["lib/deep/b.txt"], counts: { written: 2, reused: 11 } },
    );
    expect(await readFile(join(dir, "lib/deep/a.txt"), "utf8")).toBe("aaaa");
  });

  test("removes a file and a directory a hook added to a directory the new commit leaves unchanged", async () => {
    const { dir } = await recycleTampered(
      "walk-added",
      { "lib/deep/a.txt": "aaaa" },
      async (release) => {
        await writeFile(join(release, "lib/deep/added.txt"), "stray");
        await mkdir(join(release, "lib/deep/cache/more"), { recursive: true });
        await writeFile(join(release, "lib/deep/cache/more/file"), "stray");
      },
      {},
      { kept: ["lib/deep/a.txt"], counts: { written: 1, reused: 11 } },
    );
    expect(await readdir(join(dir, "lib/deep"))).toEqual(["a.txt"]);
  });

  test("rewrites a directory a hook moved into another's place, and everything below it", async () => {
    const { dir } = await recycleTampered(
      "walk-moved",
      { "lib/a/x.txt": "A x", "lib/a/deep/y.txt": "A y", "lib/b/x.txt": "B x", "lib/b/deep/y.txt": "B y", "lib/c/z.txt": "C z" },
      async (release) => {
        // Renaming moves lib/a's files to lib/b's paths without changing their ctime.
        await rm(join(release, "lib/b"), { recursive: true });
        await rename(join(release, "lib/a"), join(release, "lib/b"));
      },
      {},
      // index.html and the four files of lib/a and lib/b written; the pages and lib/c/z.txt kept.
      { kept: ["lib/c/z.txt"], counts: { written: 5, reused: 11 } },
    );
    expect(await readFile(join(dir, "lib/b/deep/y.txt"), "utf8")).toBe("B y");
  });
});
