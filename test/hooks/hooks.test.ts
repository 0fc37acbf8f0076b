import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmod, mkdir, readdir, readFile, readlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { readCredentialsFile } from "../../src/config/read-secrets.ts";
import { Secret } from "../../src/config/secret.ts";
import { captureLog, createSite, deployFailing, deployOnce, makeTarget, removeSites, type Site } from "../helpers/deploy-fixture.ts";
import { commitFiles, expectTreeEquals, git, makeTempDir, push, runGit } from "../helpers/git-fixture.ts";

setDefaultTimeout(60_000);
afterAll(removeSites);
const newSite = (prefix: string) => createSite(prefix);

/** A hooks directory holding `hooks` (name → shell body), executable unless listed in `notExecutable`. */
async function hooksDir(hooks: Record<string, string>, notExecutable: string[] = []): Promise<string> {
  const dir = await makeTempDir("hooks");
  for (const [name, body] of Object.entries(hooks)) {
    await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(dir, name), notExecutable.includes(name) ? 0o644 : 0o755);
  }
  return dir;
}

/** A hook body that records its arguments (NUL-terminated), stdin, cwd and environment into `out`. */
function recorder(out: string): string {
  return [
    `for a in "$@"; do printf '%s\\0' "$a"; done > "${out}/args"`,
    `cat > "${out}/stdin"`,
    `pwd -P > "${out}/cwd"`,
    `env > "${out}/env"`,
  ].join("\n");
}

async function currentRelease(site: Site): Promise<string> {
  return readlink(join(site.dir, "current"));
}

describe("a failing pre-deploy hook", () => {
  test("publishes nothing, keeps the old release serving, and fails the deploy with the hook's output", async () => {
    const site = await newSite("hook-fail");
    const first = await commitFiles(site.work, { "index.html": "v1" }, "v1");
    await push(site.work);
    const out = await makeTempDir("hook-fail-out");
    const hooks = await hooksDir({
      "pre-deploy": `if [ -f "$HOOKSD_RELEASE_DIR/broken" ]; then echo "build broke: missing semicolon" >&2; exit 3; fi`,
      "deploy-failed": `printf '%s' "$HOOKSD_ERROR" > "${out}/error"`,
    });
    const target = makeTarget(site, { hooksDir: hooks });
    await deployOnce(target);
    const serving = await currentRelease(site);

    await commitFiles(site.work, { "index.html": "v2", broken: "yes" }, "v2");
    await push(site.work);
    const { error, hooks: ran } = await deployFailing(target);

    expect(error.code).toBe("HOOK_FAILED");
    expect(error.message).toContain("pre-deploy hook exited with status 3");
    expect(error.message).toContain("build broke: missing semicolon");
    expect(ran.map((h) => [h.hook, h.exitCode])).toEqual([["pre-deploy", 3], ["deploy-failed", 0]]);
    expect(await readFile(join(out, "error"), "utf8")).toContain("build broke: missing semicolon");
    // Nothing published, and the unpublished release is gone.
    expect(await currentRelease(site)).toBe(serving);
    expect(await readdir(join(site.dir, "releases"))).toEqual([serving.slice("releases/".length)]);
    await expectTreeEquals(join(site.dir, "current"), site.bare, first);
  });

  test("in place, leaves the checkout on the old commit", async () => {
    const site = await newSite("hook-fail-in-place");
    const first = await commitFiles(site.work, { "index.html": "v1" }, "v1");
    await push(site.work);
    const hooks = await hooksDir({ "pre-deploy": `echo "refusing" ; exit 1` });
    const target = makeTarget(site, { strategy: "in-place" });
    await deployOnce(target);
    await commitFiles(site.work, { "index.html": "v2" }, "v2");
    await push(site.work);

    const { error } = await deployFailing({ ...target, hooksDir: hooks });
    expect(error.message).toContain("refusing");
    await expectTreeEquals(site.dir, site.bare, first);
    expect(await git(site.dir, "rev-parse", "HEAD")).toBe(first);
  });
});

test("a hook that hangs past its timeout is killed with the child it started", async () => {
  const site = await newSite("hook-hang");
  await commitFiles(site.work, { "index.html": "v1" }, "v1");
  await push(site.work);
  const out = await makeTempDir("hook-hang-out");
  const hooks = await hooksDir({ "pre-deploy": `sleep 1000 &\necho $! > "${out}/child"\necho started\nwait` });
  const target = makeTarget(site, { hooksDir: hooks, hookTimeoutSeconds: 1 });

  const { error, hooks: ran } = await deployFailing(target);
  expect(error.code).toBe("HOOK_FAILED");
  expect(error.message).toContain("pre-deploy hook timed out");
  expect(error.message).toContain("started");
  expect(ran[0]).toMatchObject({ hook: "pre-deploy", timedOut: true, signal: "SIGKILL" });
  const child = Number((await readFile(join(out, "child"), "utf8")).trim());
  expect(child).toBeGreaterThan(1);
  expect(await waitUntilGone(child)).toBe(true);
  // The first deploy failed before publishing: nothing serves.
  expect(await readdir(site.dir)).not.toContain("current");
});

/** True once `pid` no longer runs (gone, or a zombie waiting for init to reap it). */
async function waitUntilGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
    if (stat === undefined || / Z /.test(stat)) return true;
    await Bun.sleep(50);
  }
  return false;
}

test("a hook without the exec bit is skipped with git's hint in the log", async () => {
  const site = await newSite("hook-noexec");
  const first = await commitFiles(site.work, { "index.html": "v1" }, "v1");
  await push(site.work);
  const hooks = await hooksDir({ "pre-deploy": "exit 1" }, ["pre-deploy"]);
  const { lines, log } = captureLog();

  const outcome = await deployOnce(makeTarget(site, { hooksDir: hooks }), undefined, log);
  expect(outcome.hooks).toEqual([]);
  expect(lines.filter((l) => String(l.msg).startsWith("hint:"))).toEqual([
    expect.objectContaining({ level: "warn", msg: "hint: The 'pre-deploy' hook was ignored because it's not set as executable.", path: join(hooks, "pre-deploy") }),
  ]);
  await expectTreeEquals(join(site.dir, "current"), site.bare, first);
});

describe("hook arguments and stdin", () => {
  test("post-checkout gets the same bytes as from git clone and git checkout", async () => {
    const site = await newSite("hook-args");
    const first = await commitFiles(site.work, { "index.html": "v1" }, "v1");
    await push(site.work);

    // Native git: a clone (first checkout) and a checkout from the first commit to the second.
    const gitOut = await makeTempDir("git-post-checkout");
    const template = await makeTempDir("template");
    await mkdir(join(template, "hooks"));
    await writeFile(join(template, "hooks", "post-checkout"), `#!/bin/sh\n${recorder(gitOut)}\n`, { mode: 0o755 });
    const clone = join(await makeTempDir("clone"), "site");
    await git(gitOut, "clone", "--quiet", `--template=${template}`, site.bare, clone);
    const gitCloneArgs = await readFile(join(gitOut, "args"));
    const gitCloneStdin = await readFile(join(gitOut, "stdin"));

    const ours = await makeTempDir("ours-post-checkout");
    const target = makeTarget(site, { hooksDir: await hooksDir({ "post-checkout": recorder(ours) }) });
    const firstDeploy = await deployOnce(target);
    expect(await readFile(join(ours, "args"))).toEqual(gitCloneArgs);
    expect(await readFile(join(ours, "stdin"))).toEqual(gitCloneStdin);
    expect((await readFile(join(ours, "cwd"), "utf8")).trim()).toBe(join(site.dir, "releases", firstDeploy.release!));

    const second = await commitFiles(site.work, { "index.html": "v2" }, "v2");
    await push(site.work);
    await git(clone, "fetch", "--quiet", "origin");
    await git(clone, "checkout", "--quiet", second);
    await deployOnce(target);
    expect(new TextDecoder().decode(await readFile(join(ours, "args")))).toBe(`${first}\0${second}\x001\0`);
    expect(await readFile(join(ours, "args"))).toEqual(await readFile(join(gitOut, "args")));
  });

  test("pre-deploy and post-deploy get the same stdin as pre-receive and post-receive", async () => {
    const site = await newSite("hook-stdin");
    await commitFiles(site.work, { "index.html": "v1" }, "v1");
    await push(site.work);

    // Native git: a bare repository at the first commit receiving a push of the second.
    const receiver = join(await makeTempDir("receiver"), "r.git");
    await git(site.work, "clone", "--quiet", "--bare", site.bare, receiver);
    const gitPre = await makeTempDir("git-pre-receive");
    const gitPost = await makeTempDir("git-post-receive");
    await writeFile(join(receiver, "hooks", "pre-receive"), `#!/bin/sh\n${recorder(gitPre)}\n`, { mode: 0o755 });
    await writeFile(join(receiver, "hooks", "post-receive"), `#!/bin/sh\n${recorder(gitPost)}\n`, { mode: 0o755 });

    const pre = await makeTempDir("ours-pre-deploy");
    const post = await makeTempDir("ours-post-deploy");
    const target = makeTarget(site, { hooksDir: await hooksDir({ "pre-deploy": recorder(pre), "post-deploy": recorder(post) }) });
    await deployOnce(target);

    await commitFiles(site.work, { "index.html": "v2" }, "v2");
    await push(site.work);
    await runGit(site.work, ["push", "--quiet", receiver, "HEAD:refs/heads/main"]);
    await deployOnce(target);

    const gitStdin = await readFile(join(gitPre, "stdin"));
    expect(gitStdin.length).toBeGreaterThan(0);
    expect(await readFile(join(pre, "stdin"))).toEqual(gitStdin);
    expect(await readFile(join(post, "stdin"))).toEqual(await readFile(join(gitPost, "stdin")));
    expect(await readFile(join(pre, "args"))).toEqual(await readFile(join(gitPre, "args")));
  });
});

test("a hook's environment holds no secret but does hold the deploy's variables", async () => {
  const site = await createSite("hook-env", { username: "deployer", password: "tok-4f1d-credential-value" });
  const commit = await commitFiles(site.work, { "index.html": "v1" }, "v1");
  await push(site.work);

  const credDir = await makeTempDir("creds");
  await writeFile(join(credDir, "credentials"), "deployer:tok-4f1d-credential-value\n");
  const credentials = await readCredentialsFile(join(credDir, "credentials"), "--credentials-file");
  const out = await makeTempDir("hook-env-out");
  const saved = { ...process.env };
  Object.assign(process.env, {
    HOOKSD_SECRET: "webhook-secret-9c2e",
    CREDENTIALS_DIRECTORY: credDir,
    // Not secret by name, but holding the credential's value, or the signing token.
    DEPLOY_URL: "https://deployer:tok-4f1d-credential-value@example.invalid/",
    SIGNING_HELPER_ARG: "--key=signing-token-77aa",
    SITE_COLOR: "blue",
  });
  try {
    const target = makeTarget(site, { hooksDir: await hooksDir({ "post-deploy": recorder(out) }) }, {
      secrets: [new Secret("webhook-secret-9c2e")],
      signingTokens: [new Secret("signing-token-77aa")],
      credentials,
    });
    const outcome = await deployOnce(target);
    const env = await readFile(join(out, "env"), "utf8");
    expect(env).not.toContain("webhook-secret-9c2e");
    expect(env).not.toContain("tok-4f1d-credential-value");
    expect(env).not.toContain("signing-token-77aa");
    expect(env).not.toContain("CREDENTIALS_DIRECTORY");
    expect(env).toContain("SITE_COLOR=blue\n");
    expect(env).toContain("HOOKSD_TARGET=site\n");
    expect(env).toContain("HOOKSD_REF=refs/heads/main\n");
    expect(env).toContain(`HOOKSD_OLD_COMMIT=${"0".repeat(40)}\n`);
    expect(env).toContain(`HOOKSD_NEW_COMMIT=${commit}\n`);
    expect(env).toContain(`HOOKSD_DEPLOY_ID=${outcome.release}\n`);
    expect(env).toContain(`HOOKSD_RELEASE_DIR=${join(site.dir, "releases", outcome.release!)}\n`);
  } finally {
    for (const key of ["HOOKSD_SECRET", "CREDENTIALS_DIRECTORY", "DEPLOY_URL", "SIGNING_HELPER_ARG", "SITE_COLOR"]) delete process.env[key];
    Object.assign(process.env, saved);
  }
});

test("hooks committed under --repo-hooks run when executable and are hinted at when not", async () => {
  const site = await newSite("repo-hooks");
  const out = await makeTempDir("repo-hooks-out");
  await commitFiles(
    site.work,
    {
      "index.html": "v1",
      ".hooksd/post-deploy": { content: `#!/bin/sh\necho "deployed $HOOKSD_NEW_COMMIT" > "${out}/post-deploy"\n`, mode: 0o755 },
      ".hooksd/pre-deploy": { content: "#!/bin/sh\nexit 1\n", mode: 0o644 },
    },
    "v1",
  );
  const commit = await push(site.work);
  const { lines, log } = captureLog();
  const outcome = await deployOnce(makeTarget(site, { repoHooks: ".hooksd" }), undefined, log);

  expect(outcome.hooks.map((h) => [h.hook, h.exitCode])).toEqual([["post-deploy", 0]]);
  expect(await readFile(join(out, "post-deploy"), "utf8")).toBe(`deployed ${commit}\n`);
  expect(lines.some((l) => l.msg === "hint: The 'pre-deploy' hook was ignored because it's not set as executable.")).toBe(true);
  // The extracted copies are gone once the deploy ends.
  expect((await readdir(join(site.dir, ".hooksd"))).filter((n) => n.startsWith("hooks-"))).toEqual([]);
});

test("a failing post-checkout hook is logged but cannot undo the deploy", async () => {
  const site = await newSite("post-checkout-fail");
  const commit = await commitFiles(site.work, { "index.html": "v1" }, "v1");
  await push(site.work);
  const { lines, log } = captureLog();
  const outcome = await deployOnce(makeTarget(site, { hooksDir: await hooksDir({ "post-checkout": "echo nope; exit 7" }) }), undefined, log);
  expect(outcome.hooks.map((h) => [h.hook, h.exitCode, h.output])).toEqual([["post-checkout", 7, "nope\n"]]);
  expect(lines.some((l) => l.msg === "post-checkout hook exited with status 7" && l.output === "nope\n")).toBe(true);
  await expectTreeEquals(join(site.dir, "current"), site.bare, commit);
});
