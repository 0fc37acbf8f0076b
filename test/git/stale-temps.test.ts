import { afterAll, expect, test } from "bun:test";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { removeStaleTemps } from "../../src/git/stale-temps.ts";
import { makeTempDir, removeTempDirs } from "../helpers/git-fixture.ts";

afterAll(removeTempDirs);

test("removes temp files of dead processes beside the paths about to be written, and nothing else", async () => {
  const dir = await makeTempDir("stale-temps");
  const dead = Bun.spawn(["true"]);
  await dead.exited;
  const alive = Bun.spawn(["sleep", "30"]);
  try {
    await mkdir(join(dir, "a/b"), { recursive: true });
    await mkdir(join(dir, "untouched"));
    const files = [
      `a/b/.hooksd-tmp-${dead.pid}-k2j4`, // left by a killed deploy: goes
      `a/b/.hooksd-tmp-${alive.pid}-x9`, // its writer still runs: stays
      "a/b/.hooksd-tmp-notes", // not a temp name: stays
      "a/b/page.html",
      `untouched/.hooksd-tmp-${dead.pid}-zz`, // not where this deploy writes: stays
    ];
    for (const f of files) await writeFile(join(dir, f), "x");
    await removeStaleTemps(dir, ["a/b/page.html", "a/b/new.html"]);
    expect((await readdir(join(dir, "a/b"))).sort()).toEqual([`.hooksd-tmp-${alive.pid}-x9`, ".hooksd-tmp-notes", "page.html"]);
    expect(await readdir(join(dir, "untouched"))).toEqual([`.hooksd-tmp-${dead.pid}-zz`]);
  } finally {
    alive.kill();
  }
});
