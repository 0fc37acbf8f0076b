import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { LoadedTarget } from "../../src/config/loaded-target.ts";
import { MAX_BODY_BYTES } from "../../src/http/app.ts";
import { expectTreeEquals, git, removeTempDirs } from "../helpers/git-fixture.ts";
import {
  createHarness,
  createSite,
  createTarget,
  deliver,
  expectNothingDeployed,
  fixtureText,
  gitlabHeaders,
  gitlabPayload,
  SECRET,
  snapshot,
  ZERO_OID,
  type Harness,
  type Site,
  type Snapshot,
} from "./harness.ts";

// Real git processes on a shared machine can be slow; that is no reason to fail.
setDefaultTimeout(30_000);

let site: Site;
beforeAll(async () => {
  site = await createSite("webhook");
});
afterAll(async () => {
  await site.server.stop();
  await removeTempDirs();
});

let target: LoadedTarget;
let h: Harness;
let before: Snapshot;
beforeEach(async () => {
  target = await createTarget(site);
  h = createHarness(target);
  before = await snapshot(target);
  site.server.requests = 0;
});

/** A push of `site.next` to main: deployable if anything lets it through. */
function pushOfNext(patch: Record<string, unknown> = {}): Promise<string> {
  return gitlabPayload("gitlab-push.json", { ref: "refs/heads/main", before: site.base, after: site.next, checkout_sha: site.next, ...patch });
}

/** The fixture with fields changed or removed, for schema failures. */
async function pushWith(patch: Record<string, unknown>, remove: string[] = []): Promise<string> {
  const payload = JSON.parse(await pushOfNext()) as Record<string, unknown>;
  for (const key of remove) delete payload[key];
  return JSON.stringify({ ...payload, ...patch });
}

async function errorOf(res: Response): Promise<{ error: string; message: string }> {
  return (await res.json()) as { error: string; message: string };
}

describe("accepted pushes", () => {
  test("the GitLab push fixture with the right token is answered 202 at once and the checkout reaches the pushed commit later", async () => {
    const started = performance.now();
    const res = await deliver(h, await pushOfNext());
    const elapsed = performance.now() - started;

    // Looked at synchronously, before anything else can run: the answer came
    // before any git work finished.
    const indexAtAnswer = readFileSync(join(target.repo, "index.html"), "utf8");
    const body = (await res.json()) as { deploy: string; target: string; ref: string; commit: string };
    const stateAtAnswer = h.history.get(body.deploy)?.state;

    expect(res.status).toBe(202);
    expect(res.headers.get("content-type")).toStartWith("application/json");
    expect(body).toEqual({ deploy: expect.any(String), target: "site", ref: "refs/heads/main", commit: site.next });
    expect(elapsed).toBeLessThan(250);
    expect(indexAtAnswer).toBe("<h1>base</h1>\n");
    expect(["queued", "running"]).toContain(stateAtAnswer!);

    await h.deployer.idle();
    await expectTreeEquals(target.repo, site.bare, site.next);
    expect(await git(target.repo, "rev-parse", "HEAD")).toBe(site.next);
    expect(await git(target.repo, "status", "--porcelain")).toBe("");
    expect(h.history.get(body.deploy)).toMatchObject({ state: "succeeded", commit: site.next, previous: site.base, provider: "gitlab" });
    expect(site.server.requests).toBeGreaterThan(0);
  });

  test("the delivery id comes from the Idempotency-Key header and is recorded with the deploy", async () => {
    const res = await deliver(h, await pushOfNext(), gitlabHeaders({ deliveryId: "a5461c4d-9c7f-4af9-add6-cddebe3c426f" }));
    const { deploy } = (await res.json()) as { deploy: string };
    await h.deployer.idle();
    expect(h.history.get(deploy)?.deliveryId).toBe("a5461c4d-9c7f-4af9-add6-cddebe3c426f");
  });
});

describe("deliveries answered 200 and deliberately not deployed", () => {
  async function expectIgnored(res: Response, reason: RegExp): Promise<void> {
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ignored: string };
    expect(Object.keys(body)).toEqual(["ignored"]);
    expect(body.ignored).toMatch(reason);
    await expectNothingDeployed(h, site, target, before);
  }

  test("the GitLab tag push fixture is ignored when the target follows a branch", async () => {
    const res = await deliver(h, await fixtureText("gitlab-tag-push.json"), gitlabHeaders({ event: "Tag Push Hook" }));
    await expectIgnored(res, /refs\/tags\/v1\.0\.0 is not deployed/);
  });

  test("a tag push pointing at a real commit is still ignored when the target follows a branch", async () => {
    const body = await gitlabPayload("gitlab-tag-push.json", { after: site.next, checkout_sha: site.next });
    await expectIgnored(await deliver(h, body, gitlabHeaders({ event: "Tag Push Hook" })), /not deployed/);
  });

  test("the GitLab push fixture for another branch is ignored", async () => {
    const res = await deliver(h, await fixtureText("gitlab-push.json"));
    await expectIgnored(res, /refs\/heads\/master is not deployed by target site/);
  });

  test("a push of a real commit to another branch is ignored", async () => {
    await expectIgnored(await deliver(h, await pushOfNext({ ref: "refs/heads/feature" })), /not deployed/);
  });

  test("a deletion of the followed branch is ignored and never deletes or changes the site", async () => {
    const body = await pushOfNext({ before: site.next, after: ZERO_OID, checkout_sha: null });
    await expectIgnored(await deliver(h, body), /deleted; a deletion never removes the site/);
  });

  test("a tag deletion is ignored", async () => {
    const body = await gitlabPayload("gitlab-tag-push.json", { before: site.next, after: ZERO_OID, checkout_sha: null });
    await expectIgnored(await deliver(h, body, gitlabHeaders({ event: "Tag Push Hook" })), /deleted/);
  });

  test("a Merge Request Hook is ignored as an event kind that is not deployed", async () => {
    const body = JSON.stringify({ object_kind: "merge_request", event_type: "merge_request", object_attributes: { id: 1 } });
    await expectIgnored(await deliver(h, body, gitlabHeaders({ event: "Merge Request Hook" })), /'Merge Request Hook' is not deployed/);
  });
});

describe("bad deliveries are refused and deploy nothing", () => {
  async function expectRefused(res: Response, status: number, code: string, message?: RegExp): Promise<void> {
    expect(res.status).toBe(status);
    const body = await errorOf(res);
    expect(body.error).toBe(code);
    if (message) expect(body.message).toMatch(message);
    await expectNothingDeployed(h, site, target, before);
  }

  test.each([
    ["a wrong token", "not-the-secret"],
    ["an empty token", ""],
    ["the token with one character more", SECRET + "x"],
    ["the token with one character less", SECRET.slice(0, -1)],
    ["the token in upper case", SECRET.toUpperCase()],
    ["the token in lower case", SECRET.toLowerCase()],
    ["the token with its last character changed", SECRET.slice(0, -1) + "S"],
    ["the token twice", SECRET + SECRET],
  ])("%s is answered 401", async (_, token) => {
    expect(token).not.toBe(SECRET);
    await expectRefused(await deliver(h, await pushOfNext(), gitlabHeaders({ token })), 401, "BAD_SIGNATURE");
  });

  test("a missing X-Gitlab-Token is answered 401", async () => {
    await expectRefused(await deliver(h, await pushOfNext(), gitlabHeaders({ token: null })), 401, "MISSING_SIGNATURE");
  });

  test("a wrong token is refused before the body is parsed, even when the body is malformed", async () => {
    await expectRefused(await deliver(h, "{not json", gitlabHeaders({ token: "nope" })), 401, "BAD_SIGNATURE");
  });

  test("malformed JSON is answered 400", async () => {
    await expectRefused(await deliver(h, '{"object_kind": "push", "ref": '), 400, "BAD_JSON");
  });

  test("a body that is not UTF-8 is answered 400", async () => {
    await expectRefused(await deliver(h, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), 400, "BAD_JSON");
  });

  test("a JSON value that is not an object is answered 400", async () => {
    await expectRefused(await deliver(h, "[]"), 400, "BAD_PAYLOAD");
  });

  test("a payload without `after` is answered 400 naming the field", async () => {
    await expectRefused(await deliver(h, await pushWith({}, ["after"])), 400, "BAD_PAYLOAD", /\bafter\b/);
  });

  test("a payload whose `after` is not a hex commit id is answered 400 naming the field", async () => {
    await expectRefused(await deliver(h, await pushWith({ after: "HEAD~1" })), 400, "BAD_PAYLOAD", /\bafter: must be a 40-hex commit id/);
  });

  test("a payload whose `after` is upper-case hex is answered 400 naming the field", async () => {
    await expectRefused(await deliver(h, await pushWith({ after: site.next.toUpperCase() })), 400, "BAD_PAYLOAD", /\bafter\b/);
  });

  test("a payload whose `ref` is not a string is answered 400 naming the field", async () => {
    await expectRefused(await deliver(h, await pushWith({ ref: ["refs/heads/main"] })), 400, "BAD_PAYLOAD", /\bref\b/);
  });

  test("a payload whose `checkout_sha` is not a commit id is answered 400 naming the field", async () => {
    await expectRefused(await deliver(h, await pushWith({ checkout_sha: "../../etc" })), 400, "BAD_PAYLOAD", /\bcheckout_sha\b/);
  });

  test.each([
    ["with '..'", "refs/heads/a..b"],
    ["with a space (a shell command)", "refs/heads/main;touch PWNED"],
    ["climbing out of refs/", "refs/heads/../../etc/passwd"],
    ["with a newline", "refs/heads/main\nX-Injected: 1"],
    ["with reflog syntax", "refs/heads/main@{1}"],
    ["that is not a full ref", "main"],
  ])("a ref name %s is answered 400", async (_, ref) => {
    await expectRefused(await deliver(h, await pushOfNext({ ref })), 400, "BAD_REF", /\bref\b/);
  });

  /** A deployable push padded past the limit: only the limit stops it. */
  function oversizedPush(padding: number): Promise<string> {
    return pushOfNext({ padding: "x".repeat(padding) });
  }

  test("a body above 25 MB announced by Content-Length is answered 413", async () => {
    const body = await oversizedPush(MAX_BODY_BYTES);
    const headers = { ...gitlabHeaders(), "Content-Length": String(Buffer.byteLength(body)) };
    await expectRefused(await deliver(h, body, headers), 413, "TOO_LARGE");
  });

  test("a body above 25 MB streamed without Content-Length is answered 413", async () => {
    const chunk = new Uint8Array(1024 * 1024).fill(0x20); // JSON whitespace
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{"padding": '));
        if (sent > MAX_BODY_BYTES) {
          controller.enqueue(new TextEncoder().encode("1}"));
          controller.close();
          return;
        }
        controller.enqueue(chunk);
        sent += chunk.length;
      },
    });
    const res = await h.app.request("/", { method: "POST", headers: gitlabHeaders(), body: stream, duplex: "half" } as RequestInit);
    await expectRefused(res, 413, "TOO_LARGE");
  });

  test("a body just under 25 MB is not refused as too large", async () => {
    const small = await pushOfNext();
    const body = await oversizedPush(MAX_BODY_BYTES - Buffer.byteLength(small) - 64);
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(MAX_BODY_BYTES);
    const res = await deliver(h, body);
    expect(res.status).toBe(202);
    await h.deployer.idle();
    await expectTreeEquals(target.repo, site.bare, site.next);
  });

  test("GET / is answered 405 with Allow: POST", async () => {
    const res = await h.app.request("/", { method: "GET", headers: gitlabHeaders() });
    expect(res.headers.get("allow")).toBe("POST");
    await expectRefused(res, 405, "METHOD_NOT_ALLOWED");
  });

  test("PUT / with a valid push is answered 405 with Allow: POST", async () => {
    const res = await h.app.request("/", { method: "PUT", headers: gitlabHeaders(), body: await pushOfNext() });
    expect(res.headers.get("allow")).toBe("POST");
    await expectRefused(res, 405, "METHOD_NOT_ALLOWED");
  });

  test("POST /nope with a valid push is answered 404", async () => {
    const res = await h.app.request("/nope", { method: "POST", headers: gitlabHeaders(), body: await pushOfNext() });
    await expectRefused(res, 404, "NOT_FOUND");
  });

  test("a POST without any GitLab header is answered 400", async () => {
    const res = await deliver(h, await pushOfNext(), { "Content-Type": "application/json" });
    await expectRefused(res, 400, "UNKNOWN_SENDER");
  });

  test("a POST with the token but no X-Gitlab-Event header is answered 400", async () => {
    const res = await deliver(h, await pushOfNext(), { "Content-Type": "application/json", "X-Gitlab-Token": SECRET });
    await expectRefused(res, 400, "UNKNOWN_SENDER");
  });
});
