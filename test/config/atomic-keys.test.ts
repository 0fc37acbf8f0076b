import { afterAll, expect, test } from "bun:test";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "../../src/config/config-error.ts";
import { loadConfigFile } from "../../src/config/load-config-file.ts";
import { git, makeTempDir, removeTempDirs } from "../helpers/git-fixture.ts";

afterAll(removeTempDirs);

/** A config file with one target whose extra keys are `keys` (TOML lines). */
async function configWith(keys: string): Promise<{ dir: string; path: string }> {
  const dir = await makeTempDir("atomic-config");
  await writeFile(join(dir, "secret"), "s3cret\n");
  await mkdir(join(dir, "hooks"));
  const path = join(dir, "hooksd.toml");
  await writeFile(
    path,
    `state_dir = "${dir}/state"

[[targets]]
name = "www"
repo = "${dir}/www"
remote = "https://git.example.com/team/www.git"
branch = "main"
secret_files = ["${dir}/secret"]
${keys.replaceAll("DIR", dir)}
`,
  );
  return { dir, path };
}

async function problemsOf(path: string): Promise<string[]> {
  const err = await loadConfigFile(path).then(
    () => {
      throw new Error("expected the config to be rejected");
    },
    (e: unknown) => e,
  );
  if (!(err instanceof ConfigError)) throw err;
  return err.problems;
}

test("a config file sets the atomic strategy, releases kept, hooks and the health check per target", async () => {
  const { dir, path } = await configWith(`strategy = "atomic"
keep = 3
hooks_dir = "DIR/hooks"
repo_hooks = ".hooksd"
hook_timeout = 120
health_url = "http://127.0.0.1:8080/healthz"
health_timeout = 10`);
  const [target] = (await loadConfigFile(path)).targets;
  expect(target).toMatchObject({
    strategy: "atomic",
    keep: 3,
    hooksDir: `${dir}/hooks`,
    repoHooks: ".hooksd",
    hookTimeoutSeconds: 120,
    healthUrl: "http://127.0.0.1:8080/healthz",
    healthTimeoutSeconds: 10,
  });
});

test("each bad value or combination is reported by its key", async () => {
  const { path } = await configWith(`strategy = "atomic"
keep = 0
repo_hooks = "../up"
hook_timeout = 0
health_timeout = 1.5`);
  expect(await problemsOf(path)).toEqual([
    expect.stringMatching(/^targets\[0\]\.keep: /),
    expect.stringMatching(/^targets\[0\]\.repo_hooks: /),
    expect.stringMatching(/^targets\[0\]\.hook_timeout: /),
    expect.stringMatching(/^targets\[0\]\.health_timeout: /),
  ]);
});

test("a health URL without the atomic strategy, a missing hooks dir and atomic over a checkout are refused by key", async () => {
  const { dir, path } = await configWith(`health_url = "http://127.0.0.1:8080/"
hooks_dir = "DIR/no-such-hooks"`);
  expect(await problemsOf(path)).toEqual([
    "targets[0].health_url: needs the atomic strategy (in place there is no previous release to switch back to)",
    `targets[0].hooks_dir: ${dir}/no-such-hooks is not a directory`,
  ]);

  const atomic = await configWith(`strategy = "atomic"`);
  await git(atomic.dir, "init", "--quiet", join(atomic.dir, "www"));
  expect(await problemsOf(atomic.path)).toEqual([expect.stringContaining("targets[0].strategy: atomic, but")]);
});
