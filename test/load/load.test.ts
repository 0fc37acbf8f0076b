/**
 * Load: 1,000 valid, signed deliveries for one target, sent over loopback to
 * a spawned daemon by 20 concurrent clients, carrying commits that get newer
 * along the sequence. Every one is answered 2xx, the newest commit ends up
 * deployed, and the coalescing queue turns the burst into a handful of
 * deploys. The counts and timings are printed; none is asserted as a speed.
 */
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { FROM_SOURCE, startDaemon } from "../daemon/support.ts";
import { commitFiles, expectTreeEquals, git, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { createSite, createTarget, gitlabHeaders, gitlabPayload, SECRET } from "../http/harness.ts";

setDefaultTimeout(180_000);
afterAll(removeTempDirs);

/** HOOKSD_LONG=1 sends ten times as many. */
const DELIVERIES = process.env.HOOKSD_LONG ? 10_000 : 1000;
const CONCURRENCY = 20;
const COMMITS = 20;

test(`${DELIVERIES} valid deliveries for one target are all answered 2xx, coalesce into a handful of deploys, and the newest commit is deployed`, async () => {
  const site = await createSite("load");
  const target = await createTarget(site);
  const commits: string[] = [];
  for (let i = 1; i <= COMMITS; i++) commits.push(await commitFiles(site.work, { "index.html": `<h1>load ${i}</h1>\n`, [`pages/${i}.html`]: `page ${i}\n` }, `load ${i}`));
  await push(site.work);
  const newest = commits.at(-1)!;

  const secretFile = join(site.tmp, "secret");
  await writeFile(secretFile, SECRET, { mode: 0o600 });
  const daemon = await startDaemon(FROM_SOURCE, ["--repo", target.repo, "--remote", site.url, "--secret-file", secretFile, "--state-dir", join(site.tmp, "state")]);
  try {
    // Delivery i carries the commit a push at that point of the sequence would: later deliveries, newer commits.
    const bodies = await Promise.all(
      commits.map((c, i) => gitlabPayload("gitlab-push.json", { ref: "refs/heads/main", before: i === 0 ? site.next : commits[i - 1]!, after: c, checkout_sha: c })),
    );
    const statuses = new Map<number, number>();
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < DELIVERIES) {
          const i = next++;
          const body = bodies[Math.floor((i * COMMITS) / DELIVERIES)]!;
          const res = await fetch(daemon.url, { method: "POST", headers: gitlabHeaders(), body });
          await res.arrayBuffer();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        }
      }),
    );
    const sentMs = Math.round(performance.now() - started);

    // Settled: the last delivery's deploy has finished one way or another.
    let status: { deployedCommit?: string; lastDeploy?: { state: string } } = {};
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; await Bun.sleep(100)) {
      status = ((await (await fetch(new URL("/status", daemon.url))).json()) as { targets: Array<typeof status> }).targets[0]!;
      if (status.lastDeploy && !["queued", "running"].includes(status.lastDeploy.state)) break;
    }
    const settledMs = Math.round(performance.now() - started);
    const count = (msg: string) => daemon.logs.filter((l) => l.msg === msg).length;
    const ran = count("deploy started");
    console.log(
      `load: ${DELIVERIES} deliveries (${COMMITS} distinct commits, ${CONCURRENCY} concurrent) answered in ${sentMs} ms, settled in ${settledMs} ms; ` +
        `statuses ${JSON.stringify(Object.fromEntries(statuses))}; deploys run ${ran}, succeeded ${count("deploy succeeded")}, ` +
        `superseded ${count("deploy superseded")}, failed ${count("deploy failed")}`,
    );

    expect(Object.fromEntries(statuses)).toEqual({ 202: DELIVERIES });
    expect(status.deployedCommit).toBe(newest);
    expect(count("deploy failed")).toBe(0);
    // Every delivery is accounted for: it ran, or a later one replaced it in the queue.
    expect(ran + count("deploy superseded") - daemon.logs.filter((l) => l.msg === "deploy superseded" && l.deployed !== undefined).length).toBe(DELIVERIES);
    expect(ran).toBeLessThanOrEqual(DELIVERIES / 10);
    expect(await git(target.repo, "rev-parse", "HEAD")).toBe(newest);
    await expectTreeEquals(target.repo, site.bare, newest);
  } finally {
    daemon.proc.kill("SIGTERM");
    expect(await daemon.exited).toBe(0);
    await site.server.stop();
  }
});
