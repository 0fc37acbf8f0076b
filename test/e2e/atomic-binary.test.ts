/**
 * The compiled executable with atomic releases, hooks and rollback, on a
 * machine without git (an empty PATH): the target lock's flock(2) goes
 * through bun:ffi, which must work inside the single-file executable too.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { chmod, copyFile, readFile, readlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT, runProcess } from "../cli/support.ts";
import { createSite, removeSites } from "../helpers/deploy-fixture.ts";
import { commitFiles, expectTreeEquals, makeTempDir, push } from "../helpers/git-fixture.ts";

setDefaultTimeout(60_000);
let binary: string;
let emptyPath: string;

beforeAll(async () => {
  const build = await runProcess([process.execPath, "build.ts"], { ...process.env } as Record<string, string>, REPO_ROOT);
  if (build.exitCode !== 0) throw new Error(`bun build.ts failed (${build.exitCode}):\n${build.stdout}${build.stderr}`);
  // A private copy, so that a concurrent rebuild cannot swap it out mid-test.
  binary = join(await makeTempDir("atomic-e2e-bin"), "hooksd");
  await copyFile(join(REPO_ROOT, "dist/hooksd"), binary);
  emptyPath = await makeTempDir("atomic-e2e-empty-path");
}, 120_000);
afterAll(removeSites);

test("the compiled binary deploys atomic releases with hooks and rolls back, with no git on PATH", async () => {
  const site = await createSite("atomic-e2e");
  const state = await makeTempDir("atomic-e2e-state");
  const hooks = await makeTempDir("atomic-e2e-hooks");
  const out = await makeTempDir("atomic-e2e-out");
  // Builtins only: the hook inherits the empty PATH.
  await writeFile(join(hooks, "post-deploy"), `#!/bin/sh\nread line\necho "$line" > "${out}/post-deploy"\n`);
  await chmod(join(hooks, "post-deploy"), 0o755);
  const run = (args: string[]) => runProcess([binary, ...args], { PATH: emptyPath, HOME: emptyPath, LC_ALL: "C" }, emptyPath);

  const v1 = await commitFiles(site.work, { "index.html": "v1" }, "v1");
  await push(site.work);
  const first = await run(["deploy", "--repo", site.dir, "--remote", site.url, "--branch", "main", "--strategy", "atomic", "--hooks-dir", hooks, "--state-dir", state]);
  expect(first.exitCode).toBe(0);
  const v2 = await commitFiles(site.work, { "index.html": "v2" }, "v2");
  await push(site.work);
  expect((await run(["deploy", "--repo", site.dir, "--hooks-dir", hooks, "--state-dir", state])).exitCode).toBe(0);
  await expectTreeEquals(join(site.dir, "current"), site.bare, v2);
  expect(await readFile(join(out, "post-deploy"), "utf8")).toBe(`${v1} ${v2} refs/heads/main\n`);
  const serving = await readlink(join(site.dir, "current"));

  const back = await run(["rollback", "--repo", site.dir, "--state-dir", state]);
  expect(back).toMatchObject({ exitCode: 0, stderr: "" });
  expect(await readlink(join(site.dir, "current"))).not.toBe(serving);
  await expectTreeEquals(join(site.dir, "current"), site.bare, v1);
});
