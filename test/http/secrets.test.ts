import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { removeTempDirs, expectTreeEquals } from "../helpers/git-fixture.ts";
import {
  createHarness,
  createSite,
  createTarget,
  credentials,
  deliver,
  expectNothingDeployed,
  gitlabHeaders,
  gitlabPayload,
  SECRET,
  snapshot,
  type Harness,
  type Site,
} from "./harness.ts";

setDefaultTimeout(30_000);

/** The remote's password: as distinctive as the webhook secret, so any leak shows. */
const PASSWORD = "git-remote-password-Zt8Lw3Hq6Vn1";
const USERNAME = "deploy-bot";

let site: Site;
beforeAll(async () => {
  site = await createSite("secrets", { auth: { username: USERNAME, password: PASSWORD } });
});
afterAll(async () => {
  await site.server.stop();
  await removeTempDirs();
});

/** Every form in which a secret could slip out: plain, base64 (basic auth), URL-encoded. */
function forms(secret: string): string[] {
  return [secret, Buffer.from(secret).toString("base64"), Buffer.from(`${USERNAME}:${secret}`).toString("base64"), encodeURIComponent(secret)];
}

function expectNoneOf(text: string, secrets: string[]): void {
  for (const secret of secrets.flatMap(forms)) expect(text).not.toContain(secret);
}

function pushOfNext(): Promise<string> {
  return gitlabPayload("gitlab-push.json", { ref: "refs/heads/main", before: site.base, after: site.next, checkout_sha: site.next });
}

async function statusText(h: Harness): Promise<string> {
  return (await h.app.request("/status")).text();
}

describe("token errors never disclose the secret", () => {
  test.each([
    ["a wrong token", "sent-token-that-is-wrong-Kd93jX"],
    ["a token one character short", SECRET.slice(0, -1)],
    ["a token with a suffix", `${SECRET}-extra`],
  ])("%s: neither the 401 answer nor any log line holds the expected secret or the sent token", async (_, sent) => {
    const target = await createTarget(site, { credentials: credentials(USERNAME, PASSWORD) });
    const h = createHarness(target);
    const before = await snapshot(target);
    site.server.requests = 0;

    const res = await deliver(h, await pushOfNext(), gitlabHeaders({ token: sent }));
    const body = await res.text();

    expect(res.status).toBe(401);
    expect(h.logText()).toContain('"status":401'); // the access log did write its line
    expectNoneOf(body, [SECRET, sent, PASSWORD]);
    expectNoneOf(h.logText(), [SECRET, sent, PASSWORD]);
    for (const [, value] of res.headers) expectNoneOf(value, [SECRET, sent]);
    expectNoneOf(await statusText(h), [SECRET, sent, PASSWORD]);
    await expectNothingDeployed(h, site, target, before);
  });

  test("a missing token: the 401 answer and the log never hold the secret", async () => {
    const target = await createTarget(site);
    const h = createHarness(target);
    const res = await deliver(h, await pushOfNext(), gitlabHeaders({ token: null }));
    expect(res.status).toBe(401);
    expectNoneOf(await res.text(), [SECRET]);
    expectNoneOf(h.logText(), [SECRET]);
  });
});

describe("deploys with remote credentials never log them", () => {
  test("the whole log of a successful deploy with credentials holds neither the password nor the webhook secret", async () => {
    const target = await createTarget(site, { credentials: credentials(USERNAME, PASSWORD) });
    const h = createHarness(target);

    const res = await deliver(h, await pushOfNext());
    expect(res.status).toBe(202);
    await h.deployer.idle();

    expect(h.records().map((r) => r.state)).toEqual(["succeeded"]);
    await expectTreeEquals(target.repo, site.bare, site.next);
    expect(h.logText()).toContain("deploy succeeded");
    expectNoneOf(h.logText(), [PASSWORD, SECRET]);
    expectNoneOf(await statusText(h), [PASSWORD, SECRET]);
    expectNoneOf(JSON.stringify(h.records()), [PASSWORD, SECRET]);
  });

  test("a deploy refused by the remote for wrong credentials fails without logging the password it tried", async () => {
    const wrong = "wrong-remote-password-Pf5Ys0Rb";
    const target = await createTarget(site, { credentials: credentials(USERNAME, wrong) });
    const h = createHarness(target);

    const res = await deliver(h, await pushOfNext());
    expect(res.status).toBe(202);
    await h.deployer.idle();

    const [record] = h.records();
    expect(record?.state).toBe("failed");
    expect(record?.error).toMatch(/401/);
    expect(h.logText()).toContain("deploy failed");
    expectNoneOf(h.logText(), [wrong, PASSWORD, SECRET]);
    expectNoneOf(await statusText(h), [wrong, PASSWORD, SECRET]);
    await expectTreeEquals(target.repo, site.bare, site.base);
  });
});
