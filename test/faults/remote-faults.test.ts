/**
 * The remote misbehaves: it is down, answers 500 or 401, cuts the pack off,
 * stalls, or sends a damaged pack. Each time the deploy fails with a stable
 * code in history and status (after bounded retries where retrying can help),
 * the site keeps serving exactly its old tree, the checkout's object store
 * stays consistent for native git, and the next push deploys normally.
 * In-process (app.request + a real deployer) with short retry delays, plus
 * one spawned daemon with the default delays.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LoadedTarget } from "../../src/config/loaded-target.ts";
import { createDeployer } from "../../src/deploy/deployer.ts";
import { createApp } from "../../src/http/app.ts";
import { createLogger } from "../../src/log.ts";
import { createMemoryHistory } from "../../src/state/history.ts";
import { closedPort } from "../cli/support.ts";
import { FROM_SOURCE, startDaemon } from "../daemon/support.ts";
import { corruptPack, cutMidPack, stallMidPack, type ResponseHook } from "../helpers/git-faults.ts";
import { commitFiles, expectTreeEquals, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { startGitServer, type GitServer } from "../helpers/git-server.ts";
import { createSite, createTarget, gitlabHeaders, gitlabPayload, SECRET, type Site } from "../http/harness.ts";
import { expectConsistentStore, faultHarness } from "./support.ts";

setDefaultTimeout(90_000);
afterAll(removeTempDirs);

const RETRY = { attempts: 3, initialDelayMs: 20, maxDelayMs: 80 };

/** What the test's git server does instead of (or to) git's answer while a fault is on. */
interface Fault {
  onRequest?: (req: Request) => Response | undefined | Promise<Response | undefined>;
  onResponse?: ResponseHook;
}

/** A site whose server applies whatever `fault` is set to, and counts the attempts (ref advertisements) meanwhile. */
async function faultySite(prefix: string) {
  const state: { fault: Fault | undefined; advertisements: number } = { fault: undefined, advertisements: 0 };
  const site = await createSite(prefix, {
    onRequest: (req) => {
      if (state.fault && new URL(req.url).pathname.endsWith("/info/refs")) state.advertisements++;
      return state.fault?.onRequest?.(req);
    },
    onResponse: (req, res) => state.fault?.onResponse?.(req, res) ?? res,
  });
  return { site, state };
}

/** A commit big enough that its pack has a middle to cut, stall or damage. */
let commits = 0;
async function pushNewCommit(site: Site): Promise<string> {
  const n = ++commits;
  const filler = Array.from({ length: 2000 }, (_, i) => `line ${i} of commit ${n} ${Math.random()}`).join("\n");
  await commitFiles(site.work, { "index.html": `<h1>commit ${n}</h1>\n`, [`data/${n}.txt`]: filler }, `commit ${n}`);
  return push(site.work);
}

interface Case {
  name: string;
  fault: (release: Promise<void>) => Fault;
  code: string;
  error: RegExp;
  retried: boolean;
  /** fetchTimeoutSeconds for the target. */
  timeout?: number;
}

const cases: Case[] = [
  {
    name: "the remote answers HTTP 500",
    fault: () => ({ onRequest: () => new Response("internal error\n", { status: 500 }) }),
    code: "REMOTE_ERROR",
    error: /HTTP 500/,
    retried: true,
  },
  {
    name: "the remote answers 401",
    fault: () => ({ onRequest: () => new Response("authentication required\n", { status: 401, headers: { "WWW-Authenticate": 'Basic realm="git"' } }) }),
    code: "REMOTE_AUTH",
    error: /HTTP 401/,
    retried: false,
  },
  {
    name: "the connection is cut half-way through the pack",
    fault: () => ({ onResponse: cutMidPack() }),
    code: "TRANSFER_CUT",
    error: /ECONNRESET|closed/,
    retried: true,
  },
  {
    name: "the remote stalls half-way through the pack (the body, after the headers)",
    fault: () => ({ onResponse: stallMidPack() }),
    code: "FETCH_TIMEOUT",
    error: /timed out/,
    retried: true,
    timeout: 1,
  },
  {
    name: "the remote never answers at all",
    fault: (release) => ({ onRequest: () => release.then(() => undefined) }),
    code: "FETCH_TIMEOUT",
    error: /timed out/,
    retried: true,
    timeout: 1,
  },
  {
    name: "the pack arrives with bytes flipped in its middle",
    fault: () => ({ onResponse: corruptPack() }),
    code: "CORRUPT_PACK",
    error: /checksum does not match|corrupt/,
    retried: true,
  },
];

describe("remote faults, in process", () => {
  test.each(cases)("$name: the deploy fails with $code, the old tree stays, and the next push deploys", async (c) => {
    const { site, state } = await faultySite("remote-fault");
    const target = await createTarget(site, { fetchTimeoutSeconds: c.timeout ?? 30 });
    const h = faultHarness(target, RETRY);
    const broken = await pushNewCommit(site);
    let release!: () => void;
    state.fault = c.fault(new Promise<void>((r) => (release = r)));

    const record = await h.deliver(broken);
    state.fault = undefined;
    release();

    expect(record).toMatchObject({ state: "failed", code: c.code, commit: broken });
    expect(record.error).toMatch(c.error);
    expect(record.attempts).toBe(c.retried ? RETRY.attempts : undefined);
    expect(state.advertisements).toBe(c.retried ? RETRY.attempts : 1);
    expect(h.logLines().filter((l) => l.msg === "deploy attempt failed; retrying").map((l) => l.delayMs)).toEqual(c.retried ? [20, 40] : []);
    expect(await h.status()).toMatchObject({ deployedCommit: site.base, lastDeploy: { state: "failed", code: c.code } });
    await expectTreeEquals(target.repo, site.bare, site.base);
    await expectConsistentStore(target.repo);

    const fixed = await pushNewCommit(site);
    expect(await h.deliver(fixed)).toMatchObject({ state: "succeeded", commit: fixed });
    await expectTreeEquals(target.repo, site.bare, fixed);
    await expectConsistentStore(target.repo);
  });

  test("a remote that refuses connections fails with REMOTE_UNREACHABLE after retries, and deploys once it is back", async () => {
    const { site } = await faultySite("remote-refused");
    const port = await closedPort();
    const target = await createTarget(site, { remote: `http://127.0.0.1:${port}/site.git` });
    const h = faultHarness(target, RETRY);
    const broken = await pushNewCommit(site);

    const record = await h.deliver(broken);
    expect(record).toMatchObject({ state: "failed", code: "REMOTE_UNREACHABLE", attempts: RETRY.attempts });
    expect(record.error).toMatch(/ECONNREFUSED|Unable to connect/);
    expect(await h.status()).toMatchObject({ deployedCommit: site.base, lastDeploy: { code: "REMOTE_UNREACHABLE" } });
    await expectTreeEquals(target.repo, site.bare, site.base);
    await expectConsistentStore(target.repo);

    const back: GitServer = await startGitServer({ root: join(site.tmp, "repos"), port });
    try {
      const fixed = await pushNewCommit(site);
      expect(await h.deliver(fixed)).toMatchObject({ state: "succeeded", commit: fixed });
      await expectTreeEquals(target.repo, site.bare, fixed);
    } finally {
      await back.stop();
    }
  });

  test("a local failure (local changes) and a vanished commit are not retried", async () => {
    const { site, state } = await faultySite("remote-no-retry");
    const target = await createTarget(site);
    const h = faultHarness(target, RETRY);
    state.fault = {}; // count advertisements only
    const missing = "0123456789abcdef0123456789abcdef01234567";
    expect(await h.deliver(missing)).toMatchObject({ state: "failed", code: "COMMIT_NOT_FOUND", attempts: undefined });
    expect(state.advertisements).toBe(1);

    await writeFile(join(target.repo, "index.html"), "edited on the server\n");
    expect(await h.deliver(await pushNewCommit(site))).toMatchObject({ state: "failed", code: "LOCAL_CHANGES", attempts: undefined });
    expect(state.advertisements).toBe(2);
  });

  test("a newer push arriving while a failed deploy waits to retry supersedes the retry and deploys", async () => {
    const { site, state } = await faultySite("remote-supersede");
    const target = await createTarget(site);
    const lines: string[] = [];
    const log = createLogger((line) => lines.push(line));
    const history = createMemoryHistory();
    // A backoff far longer than the test: only the newer push can end it.
    const deployer = createDeployer({ targets: [target], history, log, retry: { attempts: 3, initialDelayMs: 600_000, maxDelayMs: 600_000 } });
    const app = createApp({ target, deployer, log });
    const post = async (commit: string) => {
      const body = await gitlabPayload("gitlab-push.json", { ref: "refs/heads/main", before: "0".repeat(40), after: commit, checkout_sha: commit });
      return ((await (await app.request("/", { method: "POST", headers: gitlabHeaders(), body })).json()) as { deploy: string }).deploy;
    };

    const first = await pushNewCommit(site);
    state.fault = { onRequest: () => new Response("down\n", { status: 503 }) };
    const firstId = await post(first);
    while (!lines.some((l) => l.includes("deploy attempt failed; retrying"))) await Bun.sleep(10);
    state.fault = undefined;
    const second = await pushNewCommit(site);
    const secondId = await post(second);
    await deployer.idle();

    expect(history.get(firstId)).toMatchObject({ state: "superseded", code: "REMOTE_ERROR", reason: expect.stringContaining("waited to retry") });
    expect(history.get(secondId)).toMatchObject({ state: "succeeded", commit: second });
    await expectTreeEquals(target.repo, site.bare, second);
  });
  test("a deploy waiting to retry when hooksd stops is left queued for the next start, and the stop does not wait out the backoff", async () => {
    const { site, state } = await faultySite("remote-shutdown");
    const target = await createTarget(site);
    const lines: string[] = [];
    const history = createMemoryHistory();
    const deployer = createDeployer({ targets: [target], history, log: createLogger((line) => lines.push(line)), retry: { attempts: 3, initialDelayMs: 600_000, maxDelayMs: 600_000 } });
    const commit = await pushNewCommit(site);
    state.fault = { onRequest: () => new Response("down\n", { status: 502 }) };
    const record = deployer.submit("site", { ref: "refs/heads/main", commit });
    while (!lines.some((l) => l.includes("deploy attempt failed; retrying"))) await Bun.sleep(10);

    expect(await deployer.shutdown(30_000)).toBe(true);
    expect(history.get(record.id)).toMatchObject({ state: "queued", code: "REMOTE_ERROR", attempts: 1 });
    expect(history.unfinished().map((r) => r.id)).toEqual([record.id]);
    await expectTreeEquals(target.repo, site.bare, site.base);
  });
});

describe("remote faults, spawned daemon", () => {
  test("a daemon whose remote answers 500 retries after 1 s, 2 s and 4 s, records REMOTE_ERROR, keeps serving, and deploys the next push", async () => {
    const { site, state } = await faultySite("remote-daemon");
    const target = await createTarget(site);
    const secretFile = join(site.tmp, "secret");
    await writeFile(secretFile, SECRET, { mode: 0o600 });
    const daemon = await startDaemon(FROM_SOURCE, ["--repo", target.repo, "--remote", site.url, "--secret-file", secretFile, "--state-dir", join(site.tmp, "state")]);
    try {
      const post = async (commit: string) => {
        const body = await gitlabPayload("gitlab-push.json", { ref: "refs/heads/main", before: "0".repeat(40), after: commit, checkout_sha: commit });
        const res = await fetch(daemon.url, { method: "POST", headers: gitlabHeaders(), body });
        expect(res.status).toBe(202);
        return ((await res.json()) as { deploy: string }).deploy;
      };
      const broken = await pushNewCommit(site);
      state.fault = { onRequest: () => new Response("internal error\n", { status: 500 }) };
      const id = await post(broken);
      const failed = await daemon.waitForLog((l) => l.msg === "deploy failed" && l.deploy === id, 60_000);
      state.fault = undefined;

      expect(failed).toMatchObject({ code: "REMOTE_ERROR", attempts: 4 });
      const retries = daemon.logs.filter((l) => l.msg === "deploy attempt failed; retrying" && l.deploy === id);
      expect(retries.map((l) => l.delayMs)).toEqual([1000, 2000, 4000]);
      expect(state.advertisements).toBe(4);
      const status = (await (await fetch(new URL("/status", daemon.url))).json()) as { targets: Array<{ deployedCommit: string; lastDeploy: Record<string, unknown> }> };
      expect(status.targets[0]).toMatchObject({ deployedCommit: site.base, lastDeploy: { id, state: "failed", code: "REMOTE_ERROR", attempts: 4 } });
      expect(daemon.proc.exitCode).toBeNull();
      expect((await fetch(new URL("/healthz", daemon.url))).status).toBe(200);
      await expectTreeEquals(target.repo, site.bare, site.base);
      await expectConsistentStore(target.repo);

      const fixed = await pushNewCommit(site);
      const next = await post(fixed);
      await daemon.waitForLog((l) => l.msg === "deploy succeeded" && l.deploy === next, 60_000);
      await expectTreeEquals(target.repo, site.bare, fixed);
    } finally {
      daemon.proc.kill("SIGTERM");
      expect(await daemon.exited).toBe(0);
    }
  });
});
