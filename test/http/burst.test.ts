import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createMemoryHistory, type DeployState, type History } from "../../src/state/history.ts";
import { commitFiles, expectTreeEquals, git, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { createHarness, createSite, createTarget, deliver, gitlabPayload, type Site } from "./harness.ts";

setDefaultTimeout(30_000);

let site: Site;
beforeAll(async () => {
  // Each request to the remote takes a little longer, as over a real network,
  // so that deliveries keep arriving while a deploy is under way.
  site = await createSite("burst", { onRequest: async () => void (await Bun.sleep(10)) });
});
afterAll(async () => {
  await site.server.stop();
  await removeTempDirs();
});

/**
 * A history that counts the deploys of each target in the 'running' state at
 * the same moment, as the deployer reports them.
 */
function concurrencyTrackingHistory(): { history: History; maxRunning: () => number; timeline: string[] } {
  const inner = createMemoryHistory();
  const running = new Map<string, number>();
  let max = 0;
  const timeline: string[] = [];
  const history: History = {
    ...inner,
    update(id, patch) {
      const previous = inner.get(id)?.state;
      const record = inner.update(id, patch);
      const count = running.get(record.target) ?? 0;
      if (patch.state === "running" && previous !== "running") {
        running.set(record.target, count + 1);
        max = Math.max(max, count + 1);
      } else if (previous === "running" && patch.state !== undefined && patch.state !== "running") {
        running.set(record.target, count - 1);
      }
      if (patch.state) timeline.push(`${id}:${patch.state}`);
      return record;
    },
  };
  return { history, maxRunning: () => max, timeline };
}

/** Commits `n` changes to main one by one and pushes them all to the remote; returns the shas, oldest first. */
async function pushCommits(n: number, label: string): Promise<string[]> {
  const shas: string[] = [];
  for (let i = 1; i <= n; i++) {
    shas.push(await commitFiles(site.work, { "index.html": `<h1>${label} ${i}</h1>\n`, [`${label}/${i}.txt`]: `${i}\n` }, `${label} ${i}`));
  }
  await push(site.work);
  return shas;
}

function pushOf(before: string, after: string): Promise<string> {
  return gitlabPayload("gitlab-push.json", { ref: "refs/heads/main", before, after, checkout_sha: after });
}

function countStates(states: DeployState[]): Partial<Record<DeployState, number>> {
  const counts: Partial<Record<DeployState, number>> = {};
  for (const state of states) counts[state] = (counts[state] ?? 0) + 1;
  return counts;
}

describe("a burst of pushes", () => {
  test("10 concurrent deliveries are each answered 202, coalesce into a few deploys never running two at once, and end at the newest commit", async () => {
    const shas = await pushCommits(10, "burst");
    const target = await createTarget(site);
    const tracked = concurrencyTrackingHistory();
    const h = createHarness(target, { history: tracked.history });

    const bodies = await Promise.all(shas.map((sha, i) => pushOf(i === 0 ? site.next : shas[i - 1]!, sha)));
    const responses = await Promise.all(bodies.map((body) => deliver(h, body)));
    const answers = (await Promise.all(responses.map((res) => res.json()))) as Array<{ deploy: string; commit: string }>;

    expect(responses.map((res) => res.status)).toEqual(shas.map(() => 202));
    expect(answers.map((a) => a.commit)).toEqual(shas);
    expect(new Set(answers.map((a) => a.deploy)).size).toBe(10);

    await h.deployer.idle();

    const records = h.records();
    expect(records).toHaveLength(10);
    const counts = countStates(records.map((r) => r.state));
    expect(counts.failed).toBeUndefined();
    expect(counts.succeeded ?? 0).toBeGreaterThanOrEqual(1);
    expect(counts.succeeded ?? 0).toBeLessThanOrEqual(3);
    expect(counts.superseded).toBe(10 - (counts.succeeded ?? 0));
    expect(tracked.maxRunning()).toBe(1);
    // A superseded deploy never started.
    for (const record of records.filter((r) => r.state === "superseded")) expect(record.startedAt).toBeUndefined();

    const newest = shas.at(-1)!;
    expect(records.at(-1)).toMatchObject({ commit: newest, state: "succeeded" });
    await expectTreeEquals(target.repo, site.bare, newest);
    expect(await git(target.repo, "rev-parse", "HEAD")).toBe(newest);

    const status = (await (await h.app.request("/status")).json()) as { targets: Array<{ deployedCommit: string; lastDeploy: { state: string; commit: string; id: string } }> };
    expect(status.targets[0]?.deployedCommit).toBe(newest);
    expect(status.targets[0]?.lastDeploy).toMatchObject({ id: answers.at(-1)!.deploy, state: "succeeded", commit: newest });
  });

  test("a push arriving while a deploy runs is queued and deployed after it, not lost", async () => {
    const [first, second] = await pushCommits(2, "during");
    const target = await createTarget(site);
    const tracked = concurrencyTrackingHistory();
    const h = createHarness(target, { history: tracked.history });

    const a = (await (await deliver(h, await pushOf(site.next, first!))).json()) as { deploy: string };
    // Wait until the first deploy is really fetching, then push again.
    while (h.history.get(a.deploy)?.state !== "running" || site.server.requests === 0) await Bun.sleep(1);
    const b = (await (await deliver(h, await pushOf(first!, second!))).json()) as { deploy: string };
    expect(h.history.get(b.deploy)?.state).toBe("queued");

    await h.deployer.idle();
    expect(h.history.get(a.deploy)?.state).toBe("succeeded");
    expect(h.history.get(b.deploy)?.state).toBe("succeeded");
    expect(tracked.maxRunning()).toBe(1);
    expect(tracked.timeline).toEqual([`${a.deploy}:running`, `${a.deploy}:succeeded`, `${b.deploy}:running`, `${b.deploy}:succeeded`]);
    await expectTreeEquals(target.repo, site.bare, second!);
  });

  test("a push queued behind a deploy that fails is still deployed", async () => {
    const [good] = await pushCommits(1, "after-failure");
    const target = await createTarget(site);
    const h = createHarness(target);

    const missing = "0123456789abcdef0123456789abcdef01234567";
    await deliver(h, await pushOf(site.next, missing));
    await deliver(h, await pushOf(site.next, good!));
    await h.deployer.idle();

    expect(h.records().map((r) => r.state)).toEqual(["failed", "succeeded"]);
    await expectTreeEquals(target.repo, site.bare, good!);
  });

  test("a second burst after the first has settled is deployed too", async () => {
    const target = await createTarget(site);
    const h = createHarness(target);
    // Bodies are built first so that the deliveries reach the app in push
    // order: "newest" is the push received last (the daemon cannot
    // order deliveries that arrive out of order without asking git).
    const one = await pushCommits(3, "wave-one");
    const oneBodies = await Promise.all(one.map((sha) => pushOf(site.next, sha)));
    await Promise.all(oneBodies.map((body) => deliver(h, body)));
    await h.deployer.idle();
    await expectTreeEquals(target.repo, site.bare, one.at(-1)!);

    const two = await pushCommits(3, "wave-two");
    const twoBodies = await Promise.all(two.map((sha) => pushOf(one.at(-1)!, sha)));
    await Promise.all(twoBodies.map((body) => deliver(h, body)));
    await h.deployer.idle();
    await expectTreeEquals(target.repo, site.bare, two.at(-1)!);
    expect(h.records().at(-1)?.state).toBe("succeeded");
  });
});
