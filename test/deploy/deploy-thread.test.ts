import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Secret } from "../../src/config/secret.ts";
import { createDeployThread } from "../../src/deploy/deploy-thread.ts";
import { classifyFailure } from "../../src/deploy/failure.ts";
import { newDeployId } from "../../src/deploy/deploy-id.ts";
import { GitError } from "../../src/git/git-error.ts";
import { RemoteHttpError } from "../../src/git/pack-error.ts";
import { HookError } from "../../src/hooks/hook-error.ts";
import type { HookRun } from "../../src/hooks/run-hook.ts";
import type { Phase } from "../../src/state/history.ts";
import { captureLog, createSite, makeTarget, removeSites } from "../helpers/deploy-fixture.ts";
import { commitFiles, expectTreeEquals, makeTempDir, push } from "../helpers/git-fixture.ts";

setDefaultTimeout(60_000);

const thread = createDeployThread();
afterAll(async () => {
  thread.stop();
  await removeSites();
});

async function hooksDir(hooks: Record<string, string>): Promise<string> {
  const dir = await makeTempDir("thread-hooks");
  for (const [name, body] of Object.entries(hooks)) {
    await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(dir, name), 0o755);
  }
  return dir;
}

describe("a deploy on the deploy thread", () => {
  test("writes the tree and reports its phases, the fetched commit, its log lines and its hooks back to the caller", async () => {
    const site = await createSite("thread-ok");
    const commit = await commitFiles(site.work, { "index.html": "from the thread\n", "a/b.txt": "b\n" }, "one");
    await push(site.work);
    const out = await makeTempDir("thread-ok-out");
    const target = makeTarget(site, { strategy: "in-place", hooksDir: await hooksDir({ "post-deploy": `echo "$HOOKSD_NEW_COMMIT" > "${out}/deployed"` }) });
    const { lines, log } = captureLog();
    const phases: Phase[] = [];
    const fetched: string[] = [];
    const hooks: HookRun[] = [];

    const outcome = await thread.runDeploy(target, { ref: "refs/heads/main", commit }, { id: newDeployId(), log, hooks, onPhase: (p) => phases.push(p), onFetched: (c) => fetched.push(c) });

    expect(outcome).toMatchObject({ previous: undefined, commit, changedPaths: 2 });
    await expectTreeEquals(site.dir, site.bare, commit);
    expect(phases).toEqual(["fetch", "checkout"]);
    expect(fetched).toEqual([commit]);
    expect(hooks.map((h) => [h.hook, h.exitCode])).toEqual([["post-deploy", 0]]);
    expect(outcome.hooks).toEqual(hooks);
    expect((await readFile(join(out, "deployed"), "utf8")).trim()).toBe(commit);
    expect(lines.filter((l) => l.msg === "hook finished").map((l) => l.hook)).toEqual(["post-deploy"]);
  });

  test("gets the remote's credentials, while no log line and no hook's environment shows them", async () => {
    const password = "thread-password-31337";
    const webhookSecret = "thread-webhook-secret-4242";
    const site = await createSite("thread-auth", { username: "deployer", password });
    const commit = await commitFiles(site.work, { "index.html": "private\n" }, "one");
    await push(site.work);
    const out = await makeTempDir("thread-auth-out");
    const target = makeTarget(site, { hooksDir: await hooksDir({ "post-deploy": `env > "${out}/env"` }) }, {
      secrets: [new Secret(webhookSecret)],
      credentials: { username: "deployer", password: new Secret(password) },
    });
    const { lines, log } = captureLog();

    const outcome = await thread.runDeploy(target, { ref: "refs/heads/main", commit }, { id: newDeployId(), log });

    expect(outcome.commit).toBe(commit);
    await expectTreeEquals(join(site.dir, "current"), site.bare, commit);
    const env = await readFile(join(out, "env"), "utf8");
    expect(env).toContain("HOOKSD_NEW_COMMIT=");
    for (const secret of [password, webhookSecret]) {
      expect(env).not.toContain(secret);
      expect(JSON.stringify(lines)).not.toContain(secret);
    }
  });

  test("a refused login arrives as a GitError caused by a RemoteHttpError 401, so it is classified REMOTE_AUTH, and nothing is deployed", async () => {
    const site = await createSite("thread-401", { username: "deployer", password: "right" });
    const commit = await commitFiles(site.work, { "index.html": "x\n" }, "one");
    await push(site.work);
    const target = makeTarget(site, {}, { credentials: { username: "deployer", password: new Secret("wrong-password-77") } });
    const { lines, log } = captureLog();

    const error = await thread.runDeploy(target, { ref: "refs/heads/main", commit }, { id: newDeployId(), log }).then(
      () => undefined,
      (err: unknown) => err,
    );

    expect(error).toBeInstanceOf(GitError);
    expect((error as GitError).code).toBe("FETCH_FAILED");
    expect((error as GitError).cause).toBeInstanceOf(RemoteHttpError);
    expect(((error as GitError).cause as RemoteHttpError).status).toBe(401);
    expect(classifyFailure(error)).toEqual({ code: "REMOTE_AUTH", retryable: false });
    expect(JSON.stringify([String(error), (error as Error).stack, lines])).not.toContain("wrong-password-77");
    expect(await Bun.file(site.dir).exists()).toBe(false);
  });

  test("a failing pre-deploy hook arrives as a HookError with its run, and every hook that ran is handed back", async () => {
    const site = await createSite("thread-hook");
    const commit = await commitFiles(site.work, { "index.html": "x\n" }, "one");
    await push(site.work);
    const target = makeTarget(site, { hooksDir: await hooksDir({ "pre-deploy": "echo 'no build today' >&2; exit 4", "deploy-failed": "true" }) });
    const hooks: HookRun[] = [];

    const error = await thread.runDeploy(target, { ref: "refs/heads/main", commit }, { id: newDeployId(), log: captureLog().log, hooks }).then(
      () => undefined,
      (err: unknown) => err,
    );

    expect(error).toBeInstanceOf(HookError);
    expect((error as HookError).code).toBe("HOOK_FAILED");
    expect((error as HookError).run).toMatchObject({ hook: "pre-deploy", exitCode: 4 });
    expect((error as Error).message).toContain("no build today");
    expect(classifyFailure(error)).toEqual({ code: "HOOK_FAILED", retryable: false });
    expect(hooks.map((h) => [h.hook, h.exitCode])).toEqual([["pre-deploy", 4], ["deploy-failed", 0]]);
  });
});

describe("a warmed deploy thread", () => {
  test("is started ahead of the first deploy without keeping an otherwise idle process alive", async () => {
    // A process whose only work is the warm thread: it names its threads (Bun's Worker thread is "Worker"),
    // then must exit on its own.
    const script = `
      const { readdirSync, readFileSync } = require("node:fs");
      const { createDeployThread } = await import(${JSON.stringify(join(import.meta.dir, "../../src/deploy/deploy-thread.ts"))});
      createDeployThread().warm();
      await Bun.sleep(500);
      console.log(readdirSync("/proc/self/task").map((t) => readFileSync("/proc/self/task/" + t + "/comm", "utf8").trim()).join(","));
    `;
    const proc = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => proc.kill(), 20_000);
    const [code, out] = await Promise.all([proc.exited, new Response(proc.stdout).text()]);
    clearTimeout(timer);

    expect({ code, signal: proc.signalCode }).toEqual({ code: 0, signal: null });
    expect(out.trim().split(",")).toContain("Worker");
  });

  test("runs the first deploy it is given", async () => {
    const site = await createSite("thread-warm");
    const commit = await commitFiles(site.work, { "index.html": "warm\n" }, "one");
    await push(site.work);
    const warmed = createDeployThread();
    warmed.warm();
    warmed.warm();
    try {
      const outcome = await warmed.runDeploy(makeTarget(site, { strategy: "in-place" }), { ref: "refs/heads/main", commit }, { id: newDeployId(), log: captureLog().log });

      expect(outcome).toMatchObject({ commit, changedPaths: 1 });
      await expectTreeEquals(site.dir, site.bare, commit);
    } finally {
      warmed.stop();
    }
  });
});
