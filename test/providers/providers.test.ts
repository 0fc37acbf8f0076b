import { describe, expect, test } from "bun:test";
import { Secret } from "../../src/config/secret.ts";
import { HttpError } from "../../src/http/http-error.ts";
import { bitbucketCloud } from "../../src/providers/bitbucket-cloud.ts";
import { bitbucketServer } from "../../src/providers/bitbucket-server.ts";
import { github } from "../../src/providers/github.ts";
import { gitlab } from "../../src/providers/gitlab.ts";
import { detectProvider } from "../../src/providers/index.ts";
import type { RawDelivery, VerificationKeys } from "../../src/providers/push-event.ts";
import { fixtureBytes, fixtureJson, forgeHeaders, gitlabSignature, type Forge } from "../helpers/forge-deliveries.ts";

const keys = (...secrets: string[]): VerificationKeys => ({ secrets: secrets.map((s) => new Secret(s)), signingTokens: [] });
const signingKeys = (...tokens: string[]): VerificationKeys => ({ secrets: [], signingTokens: tokens.map((s) => new Secret(s)) });
const delivery = (headers: Record<string, string>, body: Uint8Array | string): RawDelivery => ({
  headers: new Headers(headers),
  body: typeof body === "string" ? new TextEncoder().encode(body) : body,
});

function rejection(run: () => void): { status: number; code: string; message: string } | undefined {
  try {
    run();
    return undefined;
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    return { status: err.status, code: err.code, message: err.message };
  }
}

describe("published signature vectors", () => {
  test("GitHub's documented example verifies, and one changed byte of the body does not", () => {
    const header = { "X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" };
    expect(rejection(() => github.verify(delivery(header, "Hello, World!"), keys("It's a Secret to Everybody")))).toBeUndefined();
    expect(rejection(() => github.verify(delivery(header, "Hello, World?"), keys("It's a Secret to Everybody")))?.status).toBe(401);
  });

  test("the captured Bitbucket Cloud delivery verifies with its published secret and signature", async () => {
    const body = await fixtureBytes("bitbucket-cloud-push.json");
    const headers = { "X-Event-Key": "repo:push", "X-Request-UUID": "x", "X-Hub-Signature": "sha256=f205c729821c6954aff2afe72b965c34015b4baf96ea8ddc2cc44999c014a035" };
    expect(rejection(() => bitbucketCloud.verify(delivery(headers, body), keys("Gkvl$k$wyNpQAF42")))).toBeUndefined();
    expect(rejection(() => bitbucketCloud.verify(delivery(headers, body), keys("Gkvl$k$wyNpQAF43")))).toMatchObject({ status: 401, code: "BAD_SIGNATURE" });
  });

  test("any one of several configured secrets verifies a delivery, so a secret can be rotated", () => {
    const body = "Hello, World!";
    const header = { "X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" };
    expect(rejection(() => github.verify(delivery(header, body), keys("the new one", "It's a Secret to Everybody")))).toBeUndefined();
  });
});

describe("detecting the forge", () => {
  const body = new Uint8Array();
  const cases: Array<[Forge, string]> = [
    ["gitea", "gitea"],
    ["forgejo", "forgejo"],
    ["gogs", "gogs"],
    ["github", "github"],
    ["gitlab", "gitlab"],
    ["gitlab-signed", "gitlab"],
    ["bitbucket-cloud", "bitbucket-cloud"],
    ["bitbucket-server", "bitbucket-server"],
  ];
  for (const [forge, expected] of cases) {
    test(`a delivery with ${forge}'s full set of headers is detected as ${expected}`, () => {
      expect(detectProvider(new Headers(forgeHeaders(forge, body, { secret: "s" }))).name).toBe(expected as never);
    });
  }

  test("a request with no forge's headers is a 400 naming the headers looked for", () => {
    expect(rejection(() => detectProvider(new Headers({ "Content-Type": "application/json" })))).toMatchObject({ status: 400, code: "UNKNOWN_SENDER" });
  });
});

describe("GitLab's signed deliveries", () => {
  const token = `whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`;
  const body = new TextEncoder().encode('{"object_kind":"push"}');
  const now = () => Math.floor(Date.now() / 1000);

  test("a signature made with the signing token verifies", () => {
    expect(rejection(() => gitlab.verify(delivery(forgeHeaders("gitlab-signed", body, { secret: token }), body), signingKeys(token)))).toBeUndefined();
  });

  test("one valid signature among several space-separated ones is enough", () => {
    const headers = forgeHeaders("gitlab-signed", body, { secret: token, id: "d1" });
    headers["webhook-signature"] = `v1,${gitlabSignature("whsec_b3RoZXI=", "d1", headers["webhook-timestamp"]!, body)} ${headers["webhook-signature"]}`;
    expect(rejection(() => gitlab.verify(delivery(headers, body), signingKeys(token)))).toBeUndefined();
  });

  test("a timestamp more than five minutes old or ahead is refused even with a valid signature", () => {
    for (const timestamp of [now() - 301, now() + 301]) {
      const headers = forgeHeaders("gitlab-signed", body, { secret: token, timestamp });
      expect(rejection(() => gitlab.verify(delivery(headers, body), signingKeys(token)))).toMatchObject({ status: 401, code: "STALE_SIGNATURE" });
    }
  });

  test("a signature over a different id is refused: the id and timestamp are signed with the body", () => {
    const headers = forgeHeaders("gitlab-signed", body, { secret: token, id: "d1" });
    headers["webhook-id"] = "d2";
    expect(rejection(() => gitlab.verify(delivery(headers, body), signingKeys(token)))).toMatchObject({ status: 401, code: "BAD_SIGNATURE" });
  });

  test("a signed delivery must pass the signature check even when a plain token is configured and sent too", () => {
    const headers = { ...forgeHeaders("gitlab-signed", body, { secret: "whsec_d3Jvbmc=" }), "X-Gitlab-Token": "plain" };
    const both: VerificationKeys = { secrets: [new Secret("plain")], signingTokens: [new Secret(token)] };
    expect(rejection(() => gitlab.verify(delivery(headers, body), both))).toMatchObject({ status: 401, code: "BAD_SIGNATURE" });
  });

  test("with only a signing token configured, a delivery carrying just the plain token is refused", () => {
    expect(rejection(() => gitlab.verify(delivery(forgeHeaders("gitlab", body, { secret: token }), body), signingKeys(token)))).toMatchObject({
      status: 401,
      code: "MISSING_SIGNATURE",
    });
  });
});

describe("payload shapes", () => {
  test("a form-encoded GitHub delivery is parsed from its payload field", async () => {
    const json = await fixtureJson("github-push.json");
    const body = new TextEncoder().encode(new URLSearchParams({ payload: JSON.stringify(json) }).toString());
    const parsed = github.parse(delivery({ "X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded" }, body));
    expect(parsed).toMatchObject({ kind: "push", events: [{ ref: "refs/heads/master", commit: json.after, deleted: false, forced: false }] });
  });

  test("a form-encoded body without a payload field is a 400 that says so", () => {
    const run = () => github.parse(delivery({ "X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded" }, "other=1"));
    expect(rejection(run)).toMatchObject({ status: 400, code: "BAD_PAYLOAD", message: "form-encoded body has no 'payload' field" });
  });

  test("a Bitbucket Cloud push with several changes gives one event per changed ref", async () => {
    const json = await fixtureJson("bitbucket-cloud-push.json");
    const change = json.push.changes[0];
    json.push.changes = [change, { ...change, new: { ...change.new, type: "tag", name: "v2" } }, { ...change, new: null, old: { ...change.new, name: "gone" } }];
    const parsed = bitbucketCloud.parse(delivery({ "X-Event-Key": "repo:push" }, JSON.stringify(json)));
    expect(parsed.kind === "push" && parsed.events.map((e) => [e.ref, e.deleted])).toEqual([
      ["refs/heads/feature/webhook", false],
      ["refs/tags/v2", false],
      ["refs/heads/gone", true],
    ]);
  });

  test("a Bitbucket Data Center delivery carries its http clone URL, and a branch name with '..' is a 400", async () => {
    const json = await fixtureJson("bitbucket-server-refs-changed-delete.json");
    const parsed = bitbucketServer.parse(delivery({ "X-Event-Key": "repo:refs_changed" }, JSON.stringify(json)));
    expect(parsed).toMatchObject({ kind: "push", events: [{ ref: "refs/heads/feature/BB-1", deleted: true, cloneUrl: "http://localhost:7990/bitbucket/scm/amuniz/test-repos.git" }] });
    json.changes[0].refId = "refs/heads/../x";
    expect(rejection(() => bitbucketServer.parse(delivery({ "X-Event-Key": "repo:refs_changed" }, JSON.stringify(json))))).toMatchObject({ status: 400, code: "BAD_REF" });
  });
});
