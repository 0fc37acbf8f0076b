import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { DeployRecord } from "../../src/state/history.ts";
import { commitFiles, expectTreeEquals, git, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { buildBinary, createDaemonSite, createGate, gitlabPush, runHooksd, siteArgs, startDaemon, waitUntil, type Daemon, type DaemonSite, type Gate } from "./support.ts";

setDefaultTimeout(120_000);

const started: Daemon[] = [];
const sites: DaemonSite[] = [];
/** Signals and crashes are the compiled executable's business: these tests run it. */
let hooksd: string[];

beforeAll(async () => {
  hooksd = await buildBinary();
});

afterEach(() => {
  for (const d of started.splice(0)) d.proc.kill("SIGKILL");
});
afterAll(async () => {
  for (const s of sites) await s.server.stop();
  await removeTempDirs();
});

async function site(prefix: string, gate?: Gate): Promise<DaemonSite> {
  const s = await createDaemonSite(prefix, gate);
  sites.push(s);
  return s;
}

async function start(s: DaemonSite, extra: string[] = []): Promise<Daemon> {
  const d = await startDaemon(hooksd, [...siteArgs(s), ...extra]);
  started.push(d);
  return d;
}

async function deliver(d: Daemon, before: string, after: string): Promise<Response> {
  const { headers, body } = await gitlabPush(before, after);
  return fetch(d.url, { method: "POST", headers, body });
}

/** The history as `hooksd history --json` prints it: a separate process reading the state dir. */
async function historyOf(s: DaemonSite): Promise<Map<string, DeployRecord>> {
  const result = await runHooksd(hooksd, ["history", "--json", "--state-dir", s.stateDir]);
  expect(result.exitCode).toBe(0);
  return new Map((JSON.parse(result.stdout) as DeployRecord[]).map((r) => [r.id, r]));
}

const finished = (id: string) => (l: Record<string, unknown>) => l.deploy === id && (l.msg === "deploy succeeded" || l.msg === "deploy failed");

/** The daemon's threads as Linux shows them: name and nice value. */
async function threadsOf(d: Daemon): Promise<Array<{ name: string; nice: number }>> {
  const threads = [];
  for (const tid of await readdir(`/proc/${d.proc.pid}/task`)) {
    const stat = await readFile(`/proc/${d.proc.pid}/task/${tid}/stat`, "utf8");
    // "tid (name) state ppid …": fields after the name; nice is field 19 of the line.
    const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    threads.push({ name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), nice: Number(after[16]) });
  }
  return threads;
}

describe("the deploy thread", () => {
  test("starts before the first push, runs with Bun's thread pool below the webhook thread's priority, and the daemon answers webhooks while it works", async () => {
    const gate = createGate();
    const s = await site("thread", gate);
    const d = await start(s);
    // Started once the daemon listens; it lowers its own priority as soon as its modules have loaded.
    const deadline = Date.now() + 10_000;
    let workers = (await threadsOf(d)).filter((t) => t.name === "Worker");
    while (workers[0]?.nice !== 10 && Date.now() < deadline) {
      await Bun.sleep(20);
      workers = (await threadsOf(d)).filter((t) => t.name === "Worker");
    }
    expect(workers).toEqual([{ name: "Worker", nice: 10 }]);

    gate.hold();
    const running = (await (await deliver(d, s.base, s.next)).json()) as { deploy: string };
    await gate.reached;
    const threads = await threadsOf(d);
    expect(threads.filter((t) => t.name === "Worker")).toEqual([{ name: "Worker", nice: 10 }]);
    expect(threads.find((t) => t.name.startsWith("hooksd"))?.nice).toBe(0);
    // Bun's thread pool does the deploy's file I/O, so it waits behind the webhook thread too.
    const pool = threads.filter((t) => t.name.startsWith("Bun Pool"));
    expect(pool.length).toBeGreaterThan(0);
    expect(pool.filter((t) => t.nice !== 10)).toEqual([]);
    const health = await fetch(`${d.url}healthz`);
    expect(health.status).toBe(200);

    gate.release();
    expect((await d.waitForLog(finished(running.deploy))).msg).toBe("deploy succeeded");
    await expectTreeEquals(s.repo, s.bare, s.next);
    expect((await historyOf(s)).get(running.deploy)).toMatchObject({ state: "succeeded", previous: s.base, commit: s.next });
  });
});

describe("SIGTERM", () => {
  test("lets the running deploy finish, answers 503 to new deliveries, and keeps the waiting deploy queued for the next start", async () => {
    const gate = createGate();
    const s = await site("sigterm", gate);
    const third = await commitFiles(s.work, { "index.html": "<h1>third</h1>\n" }, "third");
    await push(s.work);

    gate.hold();
    const first = await start(s);
    const running = (await (await deliver(first, s.base, s.next)).json()) as { deploy: string };
    await gate.reached;
    const waitingRes = await deliver(first, s.next, third);
    expect(waitingRes.status).toBe(202);
    const waiting = (await waitingRes.json()) as { deploy: string };

    first.proc.kill("SIGTERM");
    expect((await first.waitForLog((l) => l.msg === "stopping")).queued).toEqual([waiting.deploy]);
    const refused = await deliver(first, s.next, third);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("30");
    expect(((await refused.json()) as { error: string }).error).toBe("SHUTTING_DOWN");

    // Read from outside while the daemon drains: the deploy is still in flight.
    expect((await historyOf(s)).get(running.deploy)?.state).toBe("running");
    gate.release();
    expect(await first.exited).toBe(0);
    expect((await first.waitForLog(finished(running.deploy))).msg).toBe("deploy succeeded");
    expect(first.logs.some((l) => l.msg === "deploy started" && l.deploy === waiting.deploy)).toBe(false);
    expect(await git(s.repo, "rev-parse", "HEAD")).toBe(s.next);
    await expectTreeEquals(s.repo, s.bare, s.next);

    let records = await historyOf(s);
    expect(records.get(running.deploy)?.state).toBe("succeeded");
    expect(records.get(waiting.deploy)).toMatchObject({ state: "queued", commit: third });
    expect(records.size).toBe(2); // the refused delivery left no record

    // After a restart the queued deploy runs, under its own id.
    const second = await start(s);
    await second.waitForLog((l) => l.msg === "deploy resumed" && l.deploy === waiting.deploy);
    expect((await second.waitForLog(finished(waiting.deploy))).msg).toBe("deploy succeeded");
    await expectTreeEquals(s.repo, s.bare, third);
    expect(await git(s.repo, "status", "--porcelain")).toBe("");
    second.proc.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    records = await historyOf(s);
    expect(records.get(waiting.deploy)).toMatchObject({ state: "succeeded", previous: s.next, commit: third });
    expect(records.size).toBe(2);
  });

  test("exits after --shutdown-timeout with the deploy left running, and the next start marks it interrupted and redoes it", async () => {
    const gate = createGate();
    const s = await site("grace", gate);
    gate.hold();
    const first = await start(s, ["--shutdown-timeout", "1"]);
    const stuck = (await (await deliver(first, s.base, s.next)).json()) as { deploy: string };
    await gate.reached;
    first.proc.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    expect(first.logs.some((l) => l.msg === "a deploy was still running at the shutdown timeout; the next start redoes it")).toBe(true);
    expect((await historyOf(s)).get(stuck.deploy)?.state).toBe("running");
    expect(await git(s.repo, "rev-parse", "HEAD")).toBe(s.base);

    gate.release();
    const second = await start(s);
    const redo = String((await second.waitForLog((l) => l.msg === "deploy interrupted, redoing it")).redo);
    expect((await second.waitForLog(finished(redo))).msg).toBe("deploy succeeded");
    const records = await historyOf(s);
    expect(records.get(stuck.deploy)?.state).toBe("failed");
    expect(records.get(stuck.deploy)?.error).toBe(`interrupted: hooksd stopped while this deploy was running (crash, kill or shutdown timeout); redone as deploy ${redo}`);
    expect(records.get(redo)).toMatchObject({ state: "succeeded", commit: s.next, previous: s.base, provider: "gitlab" });
    await expectTreeEquals(s.repo, s.bare, s.next);
  });
});

describe("a crash", () => {
  test("SIGKILL while the work tree is half written leaves HEAD on the old commit, and the next start redoes the deploy to a clean checkout", async () => {
    const s = await site("sigkill");
    // Enough files that the checkout takes a while, so the kill lands in the middle of it.
    const files: Record<string, string> = { "index.html": "<h1>big</h1>\n" };
    for (let i = 0; i < 3000; i++) files[`big/${String(i).padStart(4, "0")}.txt`] = `file ${i}\n`;
    const big = await commitFiles(s.work, files, "big");
    await push(s.work);

    const first = await start(s);
    const res = await deliver(first, s.base, big);
    const killed = (await res.json()) as { deploy: string };
    // A file under its final name: the checkout is writing the new tree, and HEAD moves last.
    await waitUntil(() => existsSync(join(s.repo, "big/0000.txt")), 60_000, "the checkout to start writing");
    first.proc.kill("SIGKILL");
    expect(await first.exited).toBe(137);

    // Really half-applied: some new files are there, HEAD has not moved.
    expect(await git(s.repo, "rev-parse", "HEAD")).toBe(s.base);
    expect(await git(s.repo, "status", "--porcelain", "--untracked-files=all")).not.toBe("");
    expect((await historyOf(s)).get(killed.deploy)?.state).toBe("running");

    const second = await start(s);
    const interrupted = await second.waitForLog((l) => l.msg === "deploy interrupted, redoing it");
    expect(interrupted.deploy).toBe(killed.deploy);
    const redo = String(interrupted.redo);
    expect((await second.waitForLog(finished(redo))).msg).toBe("deploy succeeded");
    await expectTreeEquals(s.repo, s.bare, big);
    expect(await git(s.repo, "status", "--porcelain", "--untracked-files=all")).toBe("");
    const records = await historyOf(s);
    expect(records.get(killed.deploy)).toMatchObject({ state: "failed" });
    expect(records.get(killed.deploy)?.error).toStartWith("interrupted: ");
    expect(records.get(redo)).toMatchObject({ state: "succeeded", commit: big, previous: s.base });
  });
});
