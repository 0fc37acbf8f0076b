import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { commitFiles, expectTreeEquals, git, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { createHarness, createSite, createTarget, deliver, gitlabPayload, listAll, snapshot, type Site } from "./harness.ts";

setDefaultTimeout(30_000);

let site: Site;
beforeAll(async () => {
  site = await createSite("security");
});
afterAll(async () => {
  await site.server.stop();
  await removeTempDirs();
});

/** Names a shell would turn into `touch PWNED`; every one is a valid ref name. */
const hostileRefs = [
  "refs/heads/main;touch${IFS}PWNED",
  "refs/heads/$(touch${IFS}PWNED)",
  "refs/heads/`touch${IFS}PWNED`",
  "refs/heads/main&&touch${IFS}PWNED",
  "refs/heads/main|touch${IFS}PWNED",
];

/** No file or directory called PWNED in the daemon's cwd, the checkout (all of it), the fixture dirs or tmp. */
async function expectNoPwned(checkout: string): Promise<void> {
  expect(existsSync(join(process.cwd(), "PWNED"))).toBe(false);
  expect(existsSync(join(tmpdir(), "PWNED"))).toBe(false);
  expect(existsSync(join(dirname(checkout), "PWNED"))).toBe(false);
  for (const dir of [checkout, site.tmp, `${site.tmp}/repos-work`]) {
    const pwned = (await listAll(dir)).filter((path) => basename(path) === "PWNED");
    expect(pwned).toEqual([]);
  }
}

describe("shell metacharacters in a valid ref name", () => {
  test.each(hostileRefs)("a push to %s for a target following refs/heads/* runs no shell and fails its fetch, leaving the site unchanged", async (ref) => {
    const target = await createTarget(site, { refs: "refs/heads/*" });
    const h = createHarness(target);
    const before = await snapshot(target);

    const body = await gitlabPayload("gitlab-push.json", { ref, before: site.base, after: site.next, checkout_sha: site.next });
    const res = await deliver(h, body);
    expect(res.status).toBe(202);
    const answer = (await res.json()) as { deploy: string; ref: string };
    expect(answer.ref).toBe(ref);
    await h.deployer.idle();

    const record = h.history.get(answer.deploy)!;
    expect(record.state).toBe("failed");
    expect(record.error).toMatch(/^fetching .* failed|has no ref/);
    expect(record.error).toContain(ref);
    await expectNoPwned(target.repo);
    expect(await snapshot(target)).toEqual(before);
    await expectTreeEquals(target.repo, site.bare, site.base);
  });

  test("when the remote really has such a branch, its commit is deployed and still nothing runs the name", async () => {
    const ref = "refs/heads/main;touch${IFS}PWNED";
    const sha = await commitFiles(site.work, { "evil.html": "still just a file\n" }, "on a hostile branch");
    await push(site.work, ref.slice("refs/heads/".length));
    const target = await createTarget(site, { refs: "refs/heads/*" });
    const h = createHarness(target);

    const body = await gitlabPayload("gitlab-push.json", { ref, before: site.next, after: sha, checkout_sha: sha });
    const res = await deliver(h, body);
    expect(res.status).toBe(202);
    await h.deployer.idle();

    expect(h.records().map((r) => r.state)).toEqual(["succeeded"]);
    await expectTreeEquals(target.repo, site.bare, sha);
    expect(await git(target.repo, "symbolic-ref", "HEAD")).toBe(ref);
    await expectNoPwned(target.repo);
  });
});
