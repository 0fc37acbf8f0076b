/**
 * The compiled executable, end to end, on a machine without git: dist/hooksd
 * is built once, copied aside (so a concurrent rebuild cannot swap it out
 * mid-test) and run with a PATH that holds nothing at all. Native git is used
 * only by the test itself, as the remote and to check the result.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { copyFile, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { commitFiles, createRemote, expectTreeEquals, git, makeTempDir, push, removeTempDirs, type FileSpec } from "../helpers/git-fixture.ts";
import { startGitServer, type GitServer } from "../helpers/git-server.ts";
import { gitlabPushBody, gitlabPushHeaders, LineCollector, parseJsonLines, REPO_ROOT, runProcess, snapshot } from "../cli/support.ts";

setDefaultTimeout(60_000);

const SECRET = "gitlab-token-e2e-31337";

let binary: string;
/** An empty directory: the whole PATH the binary gets. */
let emptyPath: string;
let secretFile: string;
const servers: GitServer[] = [];

beforeAll(async () => {
  const build = await runProcess([process.execPath, "build.ts"], { ...process.env } as Record<string, string>, REPO_ROOT);
  if (build.exitCode !== 0) throw new Error(`bun build.ts failed (${build.exitCode}):\n${build.stdout}${build.stderr}`);
  const tools = await makeTempDir("e2e-bin");
  binary = join(tools, "hooksd");
  await copyFile(join(REPO_ROOT, "dist/hooksd"), binary);
  emptyPath = await makeTempDir("e2e-empty-path");
  secretFile = join(tools, "secret");
  await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
}, 120_000);

afterAll(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  await removeTempDirs();
});

/** No git, no bun, no node: only what the executable carries. */
function bareEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: emptyPath, HOME: emptyPath, LC_ALL: "C", ...extra };
}

/** A served remote with one commit on main, and a checkout of it made by native `git clone` over HTTP. */
async function siteWithClone(files: Parameters<typeof commitFiles>[1] = { "index.html": "<h1>v1</h1>\n", "old.txt": "old\n" }) {
  const tmp = await makeTempDir("e2e");
  const root = join(tmp, "repos");
  const { bare, work } = await createRemote(root, "site.git");
  const first = await commitFiles(work, files, "v1");
  await push(work);
  const server = await startGitServer({ root });
  servers.push(server);
  const checkout = join(tmp, "site");
  await git(tmp, "clone", "--quiet", server.url("site.git"), checkout);
  return { tmp, bare, work, first, server, checkout };
}

/** `hooksd serve` from the binary, started and waited for until it prints its URL. */
async function startDaemon(checkout: string, stateDir: string, extraArgs: string[] = []) {
  const proc = Bun.spawn([binary, "serve", "--repo", checkout, "--secret-file", secretFile, "--listen", "127.0.0.1:0", "--state-dir", stateDir, ...extraArgs], {
    env: bareEnv(),
    stdout: "pipe",
    stderr: "pipe",
  });
  const stdout = new LineCollector(proc.stdout);
  const stderr = new LineCollector(proc.stderr);
  const first = await stdout.waitFor(() => true, 15_000).catch((err: Error) => {
    proc.kill("SIGKILL");
    throw new Error(`${err.message}\nstderr:\n${stderr.text()}`);
  });
  const listening = JSON.parse(first) as { msg: string; url: string };
  expect(listening.msg).toBe("listening");
  const url = listening.url;

  async function deliver(before: string, after: string, token: string | undefined) {
    const body = await gitlabPushBody("refs/heads/main", before, after);
    const start = performance.now();
    const res = await fetch(url, { method: "POST", headers: gitlabPushHeaders(token), body });
    const answeredAt = performance.now();
    return { res, json: (await res.json()) as Record<string, unknown>, ms: answeredAt - start, answeredAt };
  }

  async function status() {
    const res = await fetch(new URL("/status", url));
    expect(res.status).toBe(200);
    const { targets } = (await res.json()) as { targets: Array<{ deployedCommit?: string; lastDeploy?: { state: string; commit?: string; error?: string } }> };
    return targets[0]!;
  }

  /** Polls /status every 10 ms until the last deploy has finished; returns it with the time it was seen. */
  async function waitForDeploy(timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const target = await status();
      const state = target.lastDeploy?.state;
      if (state === "succeeded" || state === "failed") return { target, seenAt: performance.now() };
      if (Date.now() > deadline) throw new Error(`deploy not finished after ${timeoutMs} ms: ${JSON.stringify(target)}`);
      await Bun.sleep(10);
    }
  }

  async function stop() {
    proc.kill("SIGTERM");
    const exitCode = await Promise.race([proc.exited, Bun.sleep(5_000).then(() => "still running after 5 s")]);
    if (typeof exitCode === "string") proc.kill("SIGKILL");
    await stdout.ended;
    return { exitCode, stdout: stdout.text(), stderr: stderr.text() };
  }

  return { url, deliver, status, waitForDeploy, stop, proc };
}

describe("the compiled binary, with no git on PATH", () => {
  test("the test environment really has no git (nor bun) on the binary's PATH", () => {
    expect(Bun.which("git", { PATH: emptyPath })).toBeNull();
    expect(Bun.which("bun", { PATH: emptyPath })).toBeNull();
    expect(Bun.which("git")).not.toBeNull(); // ...while the test itself has one, for the remote
  });

  test("--version and --help work from the executable", async () => {
    const version = await runProcess([binary, "--version"], bareEnv());
    const pkg = (await Bun.file(join(REPO_ROOT, "package.json")).json()) as { version: string };
    expect(version).toEqual({ exitCode: 0, stdout: `hooksd ${pkg.version}\n`, stderr: "" });
    const help = await runProcess([binary, "--help"], bareEnv());
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain("--secret-file");
  });

  test("serve answers a real GitLab push with 202 at once, deploys it, and stops with exit 0 on SIGTERM", async () => {
    const { tmp, bare, work, first, server, checkout } = await siteWithClone();
    const daemon = await startDaemon(checkout, join(tmp, "state"));
    const second = await commitFiles(work, { "index.html": "<h1>v2</h1>\n", "old.txt": null, "bin/run.sh": { content: "#!/bin/sh\n", mode: 0o755 } }, "v2");
    await push(work);

    const delivery = await daemon.deliver(first, second, SECRET);
    expect(delivery.res.status).toBe(202);
    expect(delivery.json).toMatchObject({ target: "site", ref: "refs/heads/main", commit: second });
    expect(delivery.ms).toBeLessThan(1000);

    const { target } = await daemon.waitForDeploy();
    expect(target.lastDeploy).toMatchObject({ state: "succeeded", commit: second });
    expect(target.deployedCommit).toBe(second);
    await expectTreeEquals(checkout, bare, second);
    expect(await git(checkout, "status", "--porcelain")).toBe("");
    expect(server.backendErrors).toEqual([]);

    const stopped = await daemon.stop();
    expect(stopped.exitCode).toBe(0);
    expect(stopped.stderr).toBe("");
    const logs = parseJsonLines(stopped.stdout);
    const request = logs.find((l) => l.msg === "request" && l.method === "POST");
    expect(request).toMatchObject({ status: 202, provider: "gitlab", ref: "refs/heads/main" });
    expect(logs.find((l) => l.msg === "deploy succeeded")).toMatchObject({ commit: second, previous: first });
    expect(stopped.stdout).not.toContain(SECRET);
  });

  test("serve answers a wrong X-Gitlab-Token with 401 and deploys nothing", async () => {
    const { tmp, bare, work, first, server, checkout } = await siteWithClone();
    const daemon = await startDaemon(checkout, join(tmp, "state"));
    try {
      const second = await commitFiles(work, { "index.html": "<h1>v2</h1>\n" }, "v2");
      await push(work);
      const requestsBefore = server.requests;
      const before = await snapshot(checkout);

      const wrong = await daemon.deliver(first, second, "not-the-token");
      expect(wrong.res.status).toBe(401);
      const missing = await daemon.deliver(first, second, undefined);
      expect(missing.res.status).toBe(401);

      await Bun.sleep(300); // a deploy, had one been queued, would have started fetching by now
      const target = await daemon.status();
      expect(target.lastDeploy).toBeUndefined();
      expect(target.deployedCommit).toBe(first);
      expect(server.requests).toBe(requestsBefore);
      expect(await snapshot(checkout)).toEqual(before);
      await expectTreeEquals(checkout, bare, first);
    } finally {
      expect((await daemon.stop()).exitCode).toBe(0);
    }
  });

  test("deploy from the executable deploys the branch's tip and exits 0", async () => {
    const { bare, work, checkout } = await siteWithClone();
    const second = await commitFiles(work, { "index.html": "<h1>v2</h1>\n", "old.txt": null }, "v2");
    await push(work);

    const result = await runProcess([binary, "deploy", "--repo", checkout], bareEnv());

    expect({ exitCode: result.exitCode, stderr: result.stderr }).toEqual({ exitCode: 0, stderr: "" });
    await expectTreeEquals(checkout, bare, second);
    expect(await git(checkout, "status", "--porcelain")).toBe("");
    expect(parseJsonLines(result.stdout).map((l) => l.msg)).toEqual(["deploy started", "deploy succeeded"]);
  });

  test("deploy from the executable creates a missing DIR from --remote", async () => {
    const { tmp, bare, first, server } = await siteWithClone();
    const dir = join(tmp, "fresh");

    const result = await runProcess([binary, "deploy", "--repo", dir, "--remote", server.url("site.git"), "--branch", "main"], bareEnv());

    expect({ exitCode: result.exitCode, stderr: result.stderr }).toEqual({ exitCode: 0, stderr: "" });
    await expectTreeEquals(dir, bare, first);
    expect(await git(dir, "status", "--porcelain")).toBe("");
  });

  test("a first deploy of 3,000 files into a new DIR is written by two threads, and the tree and git status match", async () => {
    const { tmp, bare, work, server } = await siteWithClone();
    const files: Record<string, FileSpec> = {};
    for (let dir = 0; dir < 30; dir++) {
      for (let file = 0; file < 100; file++) files[`pages/d${dir}/page-${file}.html`] = `<p>page ${dir}/${file}</p>\n`;
    }
    files["bin/run"] = { content: "#!/bin/sh\n", mode: 0o755 };
    files["latest"] = { symlink: "pages/d29" };
    const commit = await commitFiles(work, files, "3,000 pages");
    await push(work);
    const dir = join(tmp, "new-site");
    const daemon = await startDaemon(dir, join(tmp, "state-new"), ["--remote", server.url("site.git"), "--branch", "main"]);
    try {
      expect((await daemon.deliver("0".repeat(40), commit, SECRET)).res.status).toBe(202);
      expect((await daemon.waitForDeploy(60_000)).target.lastDeploy).toMatchObject({ state: "succeeded", commit });

      await expectTreeEquals(dir, bare, commit);
      expect(await git(dir, "status", "--porcelain")).toBe("");
      // The deploy thread, and the checkout thread it started for this tree.
      const names = await Promise.all((await readdir(`/proc/${daemon.proc.pid}/task`)).map(async (t) => (await readFile(`/proc/${daemon.proc.pid}/task/${t}/comm`, "utf8")).trim()));
      expect(names.filter((n) => n === "Worker").length).toBe(2);
    } finally {
      await daemon.stop();
    }
  });

  test("a push of ~3,000 small files: 202 at once, then the tree on disk (time printed, not asserted)", async () => {
    const { tmp, bare, work, first, checkout } = await siteWithClone();
    const files: Record<string, string> = {};
    for (let dir = 0; dir < 30; dir++) {
      for (let file = 0; file < 100; file++) files[`pages/d${dir}/page-${file}.html`] = `<p>page ${dir}/${file}</p>\n`;
    }
    const second = await commitFiles(work, files, "3,000 pages");
    await push(work);
    const daemon = await startDaemon(checkout, join(tmp, "state"));
    try {
      const delivery = await daemon.deliver(first, second, SECRET);
      expect(delivery.res.status).toBe(202);
      expect(delivery.ms).toBeLessThan(1000);
      const { target, seenAt } = await daemon.waitForDeploy(60_000);
      expect(target.lastDeploy?.state).toBe("succeeded");
      const initialMs = seenAt - delivery.answeredAt;

      // And one changed file in that tree, the everyday push.
      const third = await commitFiles(work, { "pages/d7/page-42.html": "<p>edited</p>\n" }, "one edit");
      await push(work);
      const edit = await daemon.deliver(second, third, SECRET);
      expect(edit.res.status).toBe(202);
      const edited = await daemon.waitForDeploy(60_000);
      expect(edited.target.lastDeploy).toMatchObject({ state: "succeeded", commit: third });
      const editMs = edited.seenAt - edit.answeredAt;

      await expectTreeEquals(checkout, bare, third);
      expect(await git(checkout, "status", "--porcelain")).toBe("");
      const timings = parseJsonLines((await daemon.stop()).stdout)
        .filter((l) => l.msg === "deploy succeeded")
        .map((l) => l.timings);
      console.log(
        `[e2e] 202 -> tree on disk, ${Object.keys(files).length + 2} files: ${initialMs.toFixed(0)} ms for the push adding 3,000 files ` +
          `(phases ${JSON.stringify(timings[0])}), ${editMs.toFixed(0)} ms for a one-file edit (phases ${JSON.stringify(timings[1])})`,
      );
    } finally {
      if (daemon.proc.exitCode === null) await daemon.stop();
    }
  });
});
