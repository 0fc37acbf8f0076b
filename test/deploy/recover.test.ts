import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createDeployer } from "../../src/deploy/deployer.ts";
import { silentLogger } from "../../src/log.ts";
import { openDatabase } from "../../src/state/database.ts";
import { createSqliteHistory, type DeployRecord } from "../../src/state/history.ts";
import { createMetrics } from "../../src/metrics/hooksd-metrics.ts";
import { parseExposition, valueOf } from "../helpers/prometheus.ts";
import { commitFiles, expectTreeEquals, git, makeTempDir, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { createSite, createTarget, type Site } from "../http/harness.ts";

setDefaultTimeout(60_000);

let site: Site;
let third: string;

beforeAll(async () => {
  site = await createSite("recover");
  third = await commitFiles(site.work, { "index.html": "<h1>third</h1>\n" }, "third");
  await push(site.work);
});
afterAll(async () => {
  await site.server.stop();
  await removeTempDirs();
});

function record(id: string, state: DeployRecord["state"], commit: string, targetName = "site"): DeployRecord {
  return { id, target: targetName, provider: "gitlab", deliveryId: `delivery-${id}`, ref: "refs/heads/main", commit, previous: undefined, state, error: undefined,
    queuedAt: "2026-11-22T00:00:00.000Z", startedAt: state === "running" ? "2026-11-22T00:00:01.000Z" : undefined, finishedAt: undefined, timings: {} };
}

describe("Deployer.recover", () => {
  test("redoes the interrupted deploy's own commit first, then runs the queued one, and leaves other targets' records alone", async () => {
    const target = await createTarget(site);
    const db = openDatabase(await makeTempDir("recover-state"));
    const stored = createSqliteHistory(db);
    stored.add(record("20261122T000000000Z-aaaaaa", "running", site.next));
    stored.add(record("20261122T000001000Z-bbbbbb", "queued", third));
    stored.add(record("20261122T000002000Z-cccccc", "running", third, "elsewhere"));
    const metrics = createMetrics();
    const history = metrics.observe(stored, ["site"]);

    const deployer = createDeployer({ targets: [target], history, log: silentLogger });
    const owed = deployer.recover();
    await deployer.idle();

    const [redo, queued] = owed;
    expect(owed).toHaveLength(2);
    expect(queued?.id).toBe("20261122T000001000Z-bbbbbb");
    const interrupted = history.get("20261122T000000000Z-aaaaaa")!;
    expect(interrupted.state).toBe("failed");
    expect(interrupted.error).toBe(`interrupted: hooksd stopped while this deploy was running (crash, kill or shutdown timeout); redone as deploy ${redo!.id}`);

    const redone = history.get(redo!.id)!;
    const resumed = history.get(queued!.id)!;
    // The redo was not superseded by the newer queued deploy: it ran, to its own commit, first.
    expect(redone).toMatchObject({ state: "succeeded", previous: site.base, commit: site.next, provider: "gitlab", deliveryId: "delivery-20261122T000000000Z-aaaaaa" });
    expect(resumed).toMatchObject({ state: "succeeded", previous: site.next, commit: third });
    expect(Date.parse(resumed.startedAt!)).toBeGreaterThanOrEqual(Date.parse(redone.finishedAt!));
    await expectTreeEquals(target.repo, site.bare, third);

    expect(history.get("20261122T000002000Z-cccccc")?.state).toBe("running");
    expect(history.unfinished().map((r) => r.id)).toEqual(["20261122T000002000Z-cccccc"]);

    // The interrupted deploy counts as failed, but its "duration" (it spans the outage) is not observed.
    const m = parseExposition(metrics.render());
    expect(valueOf(m, "hooksd_deploys_total", { target: "site", state: "failed" })).toBe(1);
    expect(valueOf(m, "hooksd_deploys_total", { target: "site", state: "succeeded" })).toBe(2);
    expect(valueOf(m, "hooksd_deploy_duration_seconds_count", { target: "site" })).toBe(2);
    db.close();
  });

  test("after shutdown() the waiting deploy is not started and stays queued", async () => {
    const target = await createTarget(site);
    const db = openDatabase(await makeTempDir("shutdown-state"));
    const history = createSqliteHistory(db);
    const deployer = createDeployer({ targets: [target], history, log: silentLogger });
    const first = deployer.submit("site", { ref: "refs/heads/main", commit: site.next });
    const second = deployer.submit("site", { ref: "refs/heads/main", commit: third });
    expect(deployer.accepting).toBe(true);
    expect(await deployer.shutdown(30_000)).toBe(true);
    expect(deployer.accepting).toBe(false);
    expect(history.get(first.id)?.state).toBe("succeeded");
    expect(history.get(second.id)?.state).toBe("queued");
    expect(history.unfinished().map((r) => r.id)).toEqual([second.id]);
    expect(await git(target.repo, "rev-parse", "HEAD")).toBe(site.next);
    db.close();
  });
});
