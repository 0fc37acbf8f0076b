import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import type { LoadedTarget } from "../../src/config/loaded-target.ts";
import { createDeployer } from "../../src/deploy/deployer.ts";
import { createLogger } from "../../src/log.ts";
import { createMemoryHistory, createSqliteHistory, type History } from "../../src/state/history.ts";
import { commitFiles, createRemote, expectTreeEquals, makeTempDir, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { startGitServer, type GitServer } from "../helpers/git-server.ts";
import { testTarget } from "../helpers/test-target.ts";

setDefaultTimeout(30_000);

let server: GitServer;
let bare: string;
let work: string;
let commit: string;
/** Requests held until the test lets them go, to keep a deploy running. */
let gate: Promise<void> | undefined;

beforeAll(async () => {
  const tmp = await makeTempDir("deployer");
  const root = join(tmp, "repos");
  const remote = await createRemote(root, "site.git");
  bare = remote.bare;
  work = remote.work;
  commit = await commitFiles(remote.work, { "index.html": "deployer\n" }, "one");
  await push(remote.work);
  server = await startGitServer({ root, onRequest: async () => void (await gate) });
});
afterAll(async () => {
  await server.stop();
  await removeTempDirs();
});

async function target(name: string): Promise<LoadedTarget> {
  return testTarget({ name, repo: join(await makeTempDir(`deployer-${name}`), "site"), remote: server.url("site.git") });
}

const histories: Array<[string, () => History]> = [
  ["in memory", () => createMemoryHistory()],
  ["in sqlite", () => createSqliteHistory(new Database(":memory:", { strict: true }))],
];

describe("createDeployer", () => {
  test("submit returns a queued record at once and records it, before any git work", async () => {
    const history = createMemoryHistory();
    const t = await target("site");
    const deployer = createDeployer({ targets: [t], history, log: createLogger(() => {}) });
    const requestsBefore = server.requests;

    const record = deployer.submit("site", { ref: "refs/heads/main", commit, provider: "gitlab", deliveryId: "d-1" });

    expect(record).toMatchObject({ target: "site", ref: "refs/heads/main", commit, state: "queued", provider: "gitlab", deliveryId: "d-1" });
    expect(history.get(record.id)?.state).toBe("running");
    expect(server.requests).toBe(requestsBefore);
    await deployer.idle();
    expect(history.get(record.id)?.state).toBe("succeeded");
    await expectTreeEquals(t.repo, bare, commit);
  });

  test("submit to an unknown target throws and records nothing", async () => {
    const history = createMemoryHistory();
    const deployer = createDeployer({ targets: [await target("site")], history, log: createLogger(() => {}) });
    expect(() => deployer.submit("other", { ref: "refs/heads/main", commit })).toThrow("unknown target other");
    expect(history.list()).toEqual([]);
  });

  test("two targets deploy side by side, each through its own queue", async () => {
    let release!: () => void;
    gate = new Promise((resolve) => (release = resolve));
    try {
      const history = createMemoryHistory();
      const [a, b] = [await target("a"), await target("b")];
      const deployer = createDeployer({ targets: [a, b], history, log: createLogger(() => {}) });
      const ra = deployer.submit("a", { ref: "refs/heads/main", commit });
      const rb = deployer.submit("b", { ref: "refs/heads/main", commit });
      // Both are running at once: one target's deploy does not wait for another's.
      expect([history.get(ra.id)?.state, history.get(rb.id)?.state]).toEqual(["running", "running"]);
      release();
      await deployer.idle();
      expect([history.get(ra.id)?.state, history.get(rb.id)?.state]).toEqual(["succeeded", "succeeded"]);
    } finally {
      release();
      gate = undefined;
    }
  });

  test("superseded deploys are logged and recorded with an end time but never started", async () => {
    const lines: string[] = [];
    const history = createMemoryHistory();
    const deployer = createDeployer({ targets: [await target("site")], history, log: createLogger((l) => lines.push(l)) });
    const records = [1, 2, 3].map(() => deployer.submit("site", { ref: "refs/heads/main", commit }));
    await deployer.idle();

    expect(records.map((r) => history.get(r.id)?.state)).toEqual(["succeeded", "superseded", "succeeded"]);
    expect(history.get(records[1]!.id)).toMatchObject({ startedAt: undefined, finishedAt: expect.any(String) });
    expect(lines.filter((l) => JSON.parse(l).msg === "deploy superseded")).toHaveLength(1);
  });

  test.each(histories)("status() shows the last submitted deploy even when a burst shares one millisecond (history %s)", async (_, make) => {
    let release!: () => void;
    gate = new Promise((resolve) => (release = resolve));
    try {
      const history = make();
      const deployer = createDeployer({ targets: [await target("site")], history, log: createLogger(() => {}) });
      // Submitted in one synchronous burst: the ids share their millisecond
      // and differ only in their random suffix.
      const records = Array.from({ length: 20 }, () => deployer.submit("site", { ref: "refs/heads/main", commit }));
      const newest = records.at(-1)!;

      const [during] = await deployer.status();
      expect(during?.lastDeploy).toMatchObject({ id: newest.id, state: "queued" });
      release();
      await deployer.idle();
      const [after] = await deployer.status();
      expect(after?.lastDeploy).toMatchObject({ id: newest.id, state: "succeeded", commit });
      expect(history.list({ target: "site" }).map((r) => r.id)).toEqual(records.map((r) => r.id).reverse());
    } finally {
      release();
      gate = undefined;
    }
  });

  test("a burst delivered out of order still deploys its newest push", async () => {
    const history = createMemoryHistory();
    const t = await target("site");
    const deployer = createDeployer({ targets: [t], history, log: createLogger(() => {}) });
    const older = await commitFiles(work, { "index.html": "older\n" }, "older");
    const newest = await commitFiles(work, { "index.html": "newest\n" }, "newest");
    await push(work);

    let release!: () => void;
    gate = new Promise((resolve) => (release = resolve));
    try {
      deployer.submit("site", { ref: "refs/heads/main", commit }); // runs, held at the git server
      const late = deployer.submit("site", { ref: "refs/heads/main", commit: newest });
      const early = deployer.submit("site", { ref: "refs/heads/main", commit: older }); // delivered last
      release();
      await deployer.idle();
      expect(history.get(late.id)?.state).toBe("superseded");
      expect(history.get(early.id)).toMatchObject({ state: "succeeded", commit: newest });
    } finally {
      gate = undefined;
      release();
    }
    await expectTreeEquals(t.repo, bare, newest);
  });
});
