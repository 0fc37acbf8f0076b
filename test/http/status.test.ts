import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { git, makeTempDir, removeTempDirs } from "../helpers/git-fixture.ts";
import { createHarness, createSite, createTarget, deliver, gitlabPayload, type Site } from "./harness.ts";

setDefaultTimeout(30_000);

let site: Site;
beforeAll(async () => {
  site = await createSite("status");
});
afterAll(async () => {
  await site.server.stop();
  await removeTempDirs();
});

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

function push(after: string, ref = "refs/heads/main"): Promise<string> {
  return gitlabPayload("gitlab-push.json", { ref, before: site.base, after, checkout_sha: after });
}

describe("GET /healthz", () => {
  test("answers 200 with {ok: true} and needs no token", async () => {
    const h = createHarness(await createTarget(site));
    const res = await h.app.request("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  test("POST /healthz is answered 405 with Allow: GET", async () => {
    const h = createHarness(await createTarget(site));
    const res = await h.app.request("/healthz", { method: "POST" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET");
  });
});

describe("GET /status", () => {
  test("before any deploy it shows the target's name, repo, refs and the checkout's commit, and no last deploy", async () => {
    const target = await createTarget(site);
    const h = createHarness(target);
    const res = await h.app.request("/status");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      targets: [{ name: "site", repo: target.repo, refs: "refs/heads/main", deployedCommit: site.base }],
    });
  });

  test("after a successful deploy it shows the deployed commit and the deploy's id, state, ref, commit and end time", async () => {
    const target = await createTarget(site);
    const h = createHarness(target);
    const { deploy } = (await (await deliver(h, await push(site.next))).json()) as { deploy: string };
    await h.deployer.idle();

    const body = (await (await h.app.request("/status")).json()) as { targets: Record<string, unknown>[] };
    expect(body).toEqual({
      targets: [
        {
          name: "site",
          repo: target.repo,
          refs: "refs/heads/main",
          deployedCommit: site.next,
          lastDeploy: { id: deploy, state: "succeeded", ref: "refs/heads/main", commit: site.next, finishedAt: expect.stringMatching(ISO_TIME) },
        },
      ],
    });
  });

  test("after a failed deploy it shows the error and the commit still deployed", async () => {
    const target = await createTarget(site);
    const h = createHarness(target);
    const missing = "0123456789abcdef0123456789abcdef01234567";
    const { deploy } = (await (await deliver(h, await push(missing))).json()) as { deploy: string };
    await h.deployer.idle();

    const body = (await (await h.app.request("/status")).json()) as { targets: Array<{ deployedCommit: string; lastDeploy: Record<string, unknown> }> };
    const [status] = body.targets;
    expect(status?.deployedCommit).toBe(site.base);
    expect(status?.lastDeploy).toEqual({
      id: deploy,
      state: "failed",
      ref: "refs/heads/main",
      commit: missing,
      error: expect.stringContaining(missing),
      code: "COMMIT_NOT_FOUND",
      finishedAt: expect.stringMatching(ISO_TIME),
    });
    expect(await git(target.repo, "rev-parse", "HEAD")).toBe(site.base);
  });

  test("while a deploy runs, a push queued behind it is shown as the last deploy, queued, and then succeeded", async () => {
    const target = await createTarget(site);
    const h = createHarness(target);
    await deliver(h, await push(site.next));
    const second = (await (await deliver(h, await push(site.next))).json()) as { deploy: string };

    const during = (await (await h.app.request("/status")).json()) as { targets: Array<{ lastDeploy: { id: string; state: string } }> };
    expect(h.records().map((r) => r.state)).toEqual(["running", "queued"]);
    expect(during.targets[0]?.lastDeploy).toMatchObject({ id: second.deploy, state: "queued" });

    await h.deployer.idle();
    const after = (await (await h.app.request("/status")).json()) as { targets: Array<{ lastDeploy: { id: string; state: string } }> };
    expect(after.targets[0]?.lastDeploy).toMatchObject({ id: second.deploy, state: "succeeded" });
  });

  test("for a target whose directory is not a checkout yet, the first push creates it and /status follows", async () => {
    const repo = join(await makeTempDir("fresh"), "site");
    const target = { ...(await createTarget(site)), repo };
    const h = createHarness(target);

    const before = (await (await h.app.request("/status")).json()) as { targets: Array<Record<string, unknown>> };
    expect(before.targets[0]).toEqual({ name: "site", repo, refs: "refs/heads/main" });

    expect((await deliver(h, await push(site.next))).status).toBe(202);
    await h.deployer.idle();
    const after = (await (await h.app.request("/status")).json()) as { targets: Array<{ deployedCommit?: string; lastDeploy?: { state: string } }> };
    expect(after.targets[0]?.deployedCommit).toBe(site.next);
    expect(after.targets[0]?.lastDeploy?.state).toBe("succeeded");
  });

  test("POST /status is answered 405 with Allow: GET", async () => {
    const h = createHarness(await createTarget(site));
    const res = await h.app.request("/status", { method: "POST" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET");
  });
});
