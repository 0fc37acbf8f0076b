import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { cleanEnv, runCliProcess } from "./support.ts";
import { createSite, removeSites } from "../helpers/deploy-fixture.ts";
import { commitFiles, expectTreeEquals, git, makeTempDir, push } from "../helpers/git-fixture.ts";

setDefaultTimeout(60_000);
afterAll(removeSites);
const hooksd = (args: string[]) => runCliProcess(args, cleanEnv());
const newSite = (prefix: string) => createSite(prefix);

test("hooksd deploy --strategy atomic creates the layout, and later deploys of it need no flags but --repo", async () => {
  const site = await newSite("cli-atomic");
  const v1 = await commitFiles(site.work, { "index.html": "v1" }, "v1");
  await push(site.work);
  const state = await makeTempDir("cli-atomic-state");

  const first = await hooksd(["deploy", "--repo", site.dir, "--remote", site.url, "--branch", "main", "--strategy", "atomic", "--state-dir", state]);
  expect(first.exitCode).toBe(0);
  await expectTreeEquals(join(site.dir, "current"), site.bare, v1);

  const v2 = await commitFiles(site.work, { "index.html": "v2" }, "v2");
  await push(site.work);
  const second = await hooksd(["deploy", "--repo", site.dir, "--state-dir", state]);
  expect(second.exitCode).toBe(0);
  await expectTreeEquals(join(site.dir, "current"), site.bare, v2);
  expect(await readdir(join(site.dir, "releases"))).toHaveLength(2);
});

test("--strategy atomic on an existing checkout is a usage error and changes nothing", async () => {
  const site = await newSite("cli-atomic-checkout");
  const v1 = await commitFiles(site.work, { "index.html": "v1" }, "v1");
  await push(site.work);
  await git(site.work, "clone", "--quiet", site.bare, site.dir);
  const before = (await readdir(site.dir)).sort();

  const result = await hooksd(["deploy", "--repo", site.dir, "--strategy", "atomic"]);
  expect(result.exitCode).toBe(2);
  expect(result.stderr).toContain("--strategy: atomic, but");
  expect(result.stderr).toContain("is a git checkout");
  expect((await readdir(site.dir)).sort()).toEqual(before);
  await expectTreeEquals(site.dir, site.bare, v1);
});

test("--strategy in-place on atomic releases is a usage error and changes nothing", async () => {
  const site = await newSite("cli-inplace-on-atomic");
  await commitFiles(site.work, { "index.html": "v1" }, "v1");
  await push(site.work);
  const state = await makeTempDir("cli-inplace-state");
  expect((await hooksd(["deploy", "--repo", site.dir, "--remote", site.url, "--branch", "main", "--strategy", "atomic", "--state-dir", state])).exitCode).toBe(0);
  const link = await readlink(join(site.dir, "current"));

  const result = await hooksd(["deploy", "--repo", site.dir, "--strategy", "in-place", "--state-dir", state]);
  expect(result.exitCode).toBe(2);
  expect(result.stderr).toContain("--strategy: in-place, but");
  expect(await readlink(join(site.dir, "current"))).toBe(link);
});

test.each([
  [["--strategy", "blue-green"], "--strategy:"],
  [["--strategy", "in-place", "--health-url", "http://127.0.0.1:1/"], "--health-url: needs the atomic strategy"],
  [["--strategy", "atomic", "--health-url", "ftp://example.invalid/"], "--health-url:"],
  [["--strategy", "atomic", "--keep", "0"], "--keep:"],
  [["--strategy", "atomic", "--keep", "two"], "--keep:"],
  [["--strategy", "atomic", "--hook-timeout", "0"], "--hook-timeout:"],
  [["--strategy", "atomic", "--health-timeout", "1.5"], "--health-timeout:"],
  [["--strategy", "atomic", "--repo-hooks", "../outside"], "--repo-hooks:"],
  [["--strategy", "atomic", "--hooks-dir", "/nonexistent/hooks"], "--hooks-dir: /nonexistent/hooks is not a directory"],
])("a bad value (%p) exits 2 naming the flag, and deploys nothing", async (extra, message) => {
  const site = await newSite("cli-bad-flag");
  await commitFiles(site.work, { "index.html": "v1" }, "v1");
  await push(site.work);
  const result = await hooksd(["deploy", "--repo", site.dir, "--remote", site.url, "--branch", "main", ...extra]);
  expect(result.exitCode).toBe(2);
  expect(result.stderr).toContain(message);
  expect(await readdir(site.dir).catch(() => "missing")).toBe("missing");
});
