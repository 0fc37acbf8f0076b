import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { releaseLayout } from "../../src/publish/release-layout.ts";
import { acquireTargetLock } from "../../src/publish/target-lock.ts";
import { openDatabase } from "../../src/state/database.ts";
import { createSqliteHistory } from "../../src/state/history.ts";
import { cleanEnv, LineCollector, runCliProcess } from "./support.ts";
import { createSite, deployOnce, makeTarget, removeSites, type Site } from "../helpers/deploy-fixture.ts";
import { commitFiles, expectTreeEquals, makeTempDir, push } from "../helpers/git-fixture.ts";

setDefaultTimeout(120_000);
const cli = join(import.meta.dir, "../../src/cli.ts");
const fixtures = join(import.meta.dir, "../../../shared/fixtures/webhooks");
afterAll(removeSites);
const hooksd = (args: string[]) => runCliProcess(args, cleanEnv());

/** A site with three releases, v1..v3, deployed through the pipeline. */
async function siteWithReleases(prefix: string) {
  const site = await createSite(prefix);
  const target = makeTarget(site);
  const commits: string[] = [];
  const releases: string[] = [];
  for (let n = 1; n <= 3; n++) {
    commits.push(await commitFiles(site.work, { "index.html": `v${n}` }, `v${n}`));
    await push(site.work);
    releases.push((await deployOnce(target)).release!);
  }
  return { site, target, commits, releases, stateDir: await makeTempDir(`${prefix}-state`) };
}

const current = (site: Site) => readlink(join(site.dir, "current"));

describe("hooksd rollback with no daemon running", () => {
  let s: Awaited<ReturnType<typeof siteWithReleases>>;
  beforeAll(async () => {
    s = await siteWithReleases("rollback-stopped");
  });

  test("switches current to the previous release and records it in the history", async () => {
    const result = await hooksd(["rollback", "--repo", s.site.dir, "--state-dir", s.stateDir]);
    expect(result).toMatchObject({ exitCode: 0, stderr: "" });
    expect(result.stdout).toContain(`current → releases/${s.releases[1]}`);
    expect(await current(s.site)).toBe(`releases/${s.releases[1]}`);
    await expectTreeEquals(join(s.site.dir, "current"), s.site.bare, s.commits[1]!);

    const db = openDatabase(s.stateDir);
    const [record] = createSqliteHistory(db).list({ target: "site" });
    db.close();
    expect(record).toMatchObject({ kind: "rollback", state: "succeeded", release: s.releases[1], commit: s.commits[1], previous: s.commits[2], ref: "refs/heads/main" });
  });

  test("goes one release further back each time, and fails with status 1 when none is older", async () => {
    expect((await hooksd(["rollback", "--repo", s.site.dir, "--state-dir", s.stateDir])).exitCode).toBe(0);
    expect(await current(s.site)).toBe(`releases/${s.releases[0]}`);
    const none = await hooksd(["rollback", "--repo", s.site.dir, "--state-dir", s.stateDir]);
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain("no release older than");
    expect(await current(s.site)).toBe(`releases/${s.releases[0]}`);
  });

  test("--to switches to the named release, also forward", async () => {
    const result = await hooksd(["rollback", "--repo", s.site.dir, "--to", s.releases[2]!, "--state-dir", s.stateDir]);
    expect(result.exitCode).toBe(0);
    expect(await current(s.site)).toBe(`releases/${s.releases[2]}`);
    await expectTreeEquals(join(s.site.dir, "current"), s.site.bare, s.commits[2]!);
  });

  test("an unknown --to is a usage error naming the flag, and changes nothing", async () => {
    const before = await current(s.site);
    const result = await hooksd(["rollback", "--repo", s.site.dir, "--to", "20200101T000000000Z-abcdef", "--state-dir", s.stateDir]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("--to: no release 20200101T000000000Z-abcdef");
    expect(await current(s.site)).toBe(before);
    const traversal = await hooksd(["rollback", "--repo", s.site.dir, "--to", "../../etc", "--state-dir", s.stateDir]);
    expect(traversal.exitCode).toBe(2);
    expect(await current(s.site)).toBe(before);
  });

  test("a directory without atomic releases is a usage error", async () => {
    const empty = await makeTempDir("rollback-empty");
    const result = await hooksd(["rollback", "--repo", empty, "--state-dir", s.stateDir]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("--repo:");
    expect(result.stderr).toContain("holds no atomic releases");
  });

  test("waits for a publish holding the target lock instead of racing it", async () => {
    const before = await current(s.site);
    const lock = await acquireTargetLock(releaseLayout(s.site.dir).lock, { timeoutMs: 0, purpose: "deploy in a test" });
    const proc = Bun.spawn([process.execPath, cli, "rollback", "--repo", s.site.dir, "--state-dir", s.stateDir], { stdout: "pipe", stderr: "pipe", env: cleanEnv() });
    const stderr = new Response(proc.stderr).text();
    await Bun.sleep(1500);
    // Still waiting: nothing switched while the "deploy" holds the lock.
    expect(proc.exitCode).toBeNull();
    expect(await current(s.site)).toBe(before);
    lock.release();
    expect(await proc.exited).toBe(0);
    expect(await stderr).toContain(`is held by pid ${process.pid} (deploy in a test)`);
    expect(await current(s.site)).toBe(`releases/${s.releases[1]}`);
  });
});

describe("hooksd rollback while the daemon runs", () => {
  test("switches back, is recorded beside the daemon's deploys, and the next push deploys on top", async () => {
    const site = await createSite("rollback-daemon");
    const stateDir = await makeTempDir("rollback-daemon-state");
    const secret = "daemon-webhook-secret";
    const daemon = Bun.spawn(
      [process.execPath, cli, "serve", "--repo", site.dir, "--remote", site.url, "--branch", "main", "--strategy", "atomic", "--listen", "127.0.0.1:0", "--state-dir", stateDir],
      { stdout: "pipe", stderr: "inherit", env: cleanEnv({ HOOKSD_SECRET: secret }) },
    );
    try {
      const lines = new LineCollector(daemon.stdout);
      const listening = await waitForLine(lines, (l) => l.msg === "listening");
      const base = String(listening.url);
      const payload = JSON.parse(await readFile(join(fixtures, "gitlab-push.json"), "utf8")) as Record<string, unknown>;

      const deploy = async (n: number) => {
        const commit = await commitFiles(site.work, { "index.html": `v${n}` }, `v${n}`);
        await push(site.work);
        const body = JSON.stringify({ ...payload, ref: "refs/heads/main", after: commit, checkout_sha: commit });
        const response = await fetch(base, { method: "POST", body, headers: { "content-type": "application/json", "x-gitlab-event": "Push Hook", "x-gitlab-token": secret } });
        expect(response.status).toBe(202);
        const { deploy: id } = (await response.json()) as { deploy: string };
        await waitForLine(lines, (l) => l.deploy === id && l.msg === "deploy succeeded");
        return { commit, id };
      };
      const first = await deploy(1);
      const second = await deploy(2);
      expect(await current(site)).toBe(`releases/${second.id}`);

      const result = await hooksd(["rollback", "--repo", site.dir, "--state-dir", stateDir]);
      expect(result.exitCode).toBe(0);
      expect(await current(site)).toBe(`releases/${first.id}`);
      const status = (await (await fetch(`${base}status`)).json()) as { targets: { deployedCommit: string }[] };
      expect(status.targets[0]?.deployedCommit).toBe(first.commit);

      const third = await deploy(3);
      expect(await current(site)).toBe(`releases/${third.id}`);
      await expectTreeEquals(join(site.dir, "current"), site.bare, third.commit);

      const db = openDatabase(stateDir);
      const history = createSqliteHistory(db).list({ target: "site" });
      db.close();
      expect(history.map((r) => [r.kind ?? "deploy", r.state, r.commit])).toEqual([
        ["deploy", "succeeded", third.commit],
        ["rollback", "succeeded", first.commit],
        ["deploy", "succeeded", second.commit],
        ["deploy", "succeeded", first.commit],
      ]);
    } finally {
      daemon.kill("SIGTERM");
      await daemon.exited;
    }
  });
});

type LogLine = Record<string, unknown>;

/** The first JSON log line matching `match`, waiting up to a minute for it. */
async function waitForLine(lines: LineCollector, match: (line: LogLine) => boolean): Promise<LogLine> {
  return JSON.parse(await lines.waitFor((text) => match(JSON.parse(text) as LogLine), 60_000)) as LogLine;
}
