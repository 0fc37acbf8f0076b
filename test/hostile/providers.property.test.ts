/**
 * Hostile input, generated: for every forge, 10,000 bodies and header sets
 * (random bytes, random JSON, and payloads shaped like the forge's own with
 * hostile refs and ids; unsigned, wrongly signed, and validly signed) go
 * through the real app and a real deployer. None may produce a 5xx, none
 * without a valid signature may queue a deploy, and every deploy queued must
 * name a well-formed ref the target follows and a 40-hex commit, so that no
 * path outside the target can ever be derived from it. The deploys fetch from
 * a closed port: they fail at once, touching nothing.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdir } from "node:fs/promises";
import { dirname } from "node:path";
import fc from "fast-check";
import { Secret } from "../../src/config/secret.ts";
import { createDeployer } from "../../src/deploy/deployer.ts";
import { checkRefFormat } from "../../src/git/ref-format.ts";
import { createApp } from "../../src/http/app.ts";
import { silentLogger } from "../../src/log.ts";
import { createMemoryHistory, type DeployRecord, type History } from "../../src/state/history.ts";
import { closedPort } from "../cli/support.ts";
import { forgeHeaders, gitlabSignature, hexHmac, type Forge } from "../helpers/forge-deliveries.ts";
import { expectTreeEquals, removeTempDirs } from "../helpers/git-fixture.ts";
import { createSite, createTarget, snapshot, type Site } from "../http/harness.ts";

setDefaultTimeout(180_000);
afterAll(async () => {
  await site?.server.stop();
  await removeTempDirs();
});

/** Per forge; HOOKSD_LONG=1 runs ten times as many. */
const RUNS = process.env.HOOKSD_LONG ? 100_000 : 10_000;
const SECRET = "property-secret-3kQ9";
const SIGNING_TOKEN = "whsec_" + Buffer.from("property-signing-key").toString("base64");
const FORGES: Forge[] = ["github", "gitea", "forgejo", "gogs", "gitlab", "gitlab-signed", "bitbucket-cloud", "bitbucket-server"];

let site: Site | undefined;

const printable = fc.string({ unit: "grapheme-ascii", maxLength: 40 });
const hex40 = fc.stringMatching(/^[0-9a-f]{40}$/);
const oid = fc.oneof({ weight: 8, arbitrary: hex40 }, fc.constant("0".repeat(40)), printable, fc.integer(), fc.constant(null));
const hostileRef = fc.oneof(
  // Plausible names, many valid, some not ("..", "x.lock", "a//b").
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9._\/-]{0,30}$/).map((s) => `refs/heads/${s}`) },
  fc.constantFrom(
    "refs/heads/main",
    "refs/heads/../../../../etc/passwd",
    "refs/heads/a/../../b",
    "/etc/passwd",
    "../../outside",
    "refs/heads/$(touch /tmp/hooksd-pwned)",
    "refs/heads/`id`;rm -rf /",
    "refs/heads/x\u0000y",
    "refs/heads/.git/config",
    "refs/heads/%2e%2e/x",
    "refs/heads/main.lock",
    "refs/heads//double",
    "refs/heads/-n",
    "refs/tags/v1",
    "HEAD",
  ),
  fc.string({ maxLength: 60 }),
  fc.string({ unit: "binary", maxLength: 30 }).map((s) => `refs/heads/${s}`),
  fc
    .array(fc.constantFrom("..", ".", "a", "main", ".git", "~1", "^", ":", "\\", " ", "@{0}", "*", "?", "[", "x.lock", "-", ""), { minLength: 1, maxLength: 6 })
    .map((parts) => `refs/heads/${parts.join("/")}`),
);
const anyJson = fc.jsonValue({ maxDepth: 3 });

/** A payload shaped like the forge's push, with hostile fields. */
function shapedPayload(forge: Forge): fc.Arbitrary<unknown> {
  switch (forge) {
    case "github":
    case "gitea":
    case "forgejo":
    case "gogs":
      return fc.record(
        {
          ref: hostileRef,
          before: oid,
          after: oid,
          deleted: fc.oneof(fc.boolean(), anyJson),
          forced: fc.boolean(),
          head_commit: fc.oneof(fc.constant(null), fc.record({ id: oid })),
          repository: fc.record({ clone_url: fc.oneof(printable, fc.constant("file:///etc")) }),
        },
        { requiredKeys: ["ref", "after"] },
      );
    case "gitlab":
    case "gitlab-signed":
      return fc.record(
        {
          object_kind: fc.oneof(fc.constantFrom("push", "tag_push"), printable),
          ref: hostileRef,
          before: oid,
          after: oid,
          checkout_sha: fc.oneof(oid, fc.constant(null)),
          project: fc.record({ git_http_url: printable }),
        },
        { requiredKeys: ["object_kind", "ref", "after"] },
      );
    case "bitbucket-cloud": {
      const state = fc.oneof(
        fc.constant(null),
        fc.record({ type: fc.oneof(fc.constantFrom("branch", "tag", "named_branch", "bookmark"), printable), name: hostileRef, target: fc.record({ hash: oid }) }),
      );
      return fc.record({ push: fc.record({ changes: fc.array(fc.record({ old: state, new: state, forced: fc.boolean() }), { maxLength: 4 }) }) });
    }
    case "bitbucket-server":
      return fc.record({
        changes: fc.array(fc.record({ refId: hostileRef, fromHash: oid, toHash: oid, type: fc.constantFrom("UPDATE", "ADD", "DELETE", "x") }), { maxLength: 4 }),
      });
  }
}

type Signing = "valid" | "none" | "wrong" | "garbage";

interface Generated {
  body: Uint8Array;
  formEncoded: boolean;
  signing: Signing;
  /** Headers to drop, add or overwrite after the forge's own set is built. */
  drop: string[];
  extra: Record<string, string>;
  event: string | undefined;
}

function deliveries(forge: Forge, knownHeaders: string[]): fc.Arbitrary<Generated> {
  const body = fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }) },
    { weight: 1, arbitrary: anyJson.map((j) => Buffer.from(JSON.stringify(j))) },
    { weight: 4, arbitrary: shapedPayload(forge).map((j) => Buffer.from(JSON.stringify(j))) },
  );
  const headerValue = fc.oneof(printable, hex40, fc.constant(""), fc.constantFrom("sha256=", "v1,", "v1,AAAA", "push", "Push Hook", "repo:push", "repo:refs_changed"));
  const headerName = fc.oneof(fc.constantFrom(...knownHeaders), fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/));
  return fc.record({
    body,
    formEncoded: fc.boolean(),
    signing: fc.constantFrom<Signing>("valid", "valid", "valid", "valid", "none", "wrong", "garbage"),
    drop: fc.oneof(fc.constant([] as string[]), fc.array(fc.constantFrom(...knownHeaders), { maxLength: 2 })),
    extra: fc.oneof(fc.constant({}), fc.dictionary(headerName, headerValue, { maxKeys: 3 })),
    // Mostly the forge's own push event; sometimes another event, or nonsense.
    event: fc.oneof(
      { weight: 4, arbitrary: fc.constant(undefined) },
      fc.constantFrom("push", "Push Hook", "Tag Push Hook", "repo:push", "repo:refs_changed", "ping", "delete"),
      printable,
    ),
  });
}

function buildRequest(forge: Forge, g: Generated): { headers: Headers; body: Uint8Array } {
  const body = g.formEncoded ? Buffer.from(new URLSearchParams({ payload: Buffer.from(g.body).toString("latin1") }).toString()) : g.body;
  const secret = g.signing === "wrong" ? "not-the-secret" : forge === "gitlab-signed" ? SIGNING_TOKEN : SECRET;
  const signed = forgeHeaders(forge, body, { secret: g.signing === "none" ? undefined : secret, event: g.event });
  const headers = new Headers(signed);
  if (g.formEncoded) headers.set("content-type", "application/x-www-form-urlencoded");
  // Extra headers may overwrite signature headers: that is a wrong signature, never a valid one.
  for (const [name, value] of Object.entries(g.extra)) headers.set(name, value);
  for (const name of g.drop) headers.delete(name);
  if (g.signing === "garbage") for (const name of signatureHeaders(forge)) if (headers.has(name)) headers.set(name, "sha256=" + "z".repeat(64));
  return { headers, body };
}

function signatureHeaders(forge: Forge): string[] {
  return ["x-hub-signature-256", "x-hub-signature", "x-gitea-signature", "x-forgejo-signature", "x-gogs-signature", "x-gitlab-token", "webhook-signature"].filter((h) =>
    Object.keys(forgeHeaders(forge, new Uint8Array(), { secret: "s" })).some((k) => k.toLowerCase() === h),
  );
}

/**
 * Checked by the test on its own, not by the code under test: some header of
 * the request carries a valid signature (or GitLab token) over these bytes.
 */
function carriesValidSignature(headers: Headers, body: Uint8Array): boolean {
  const hex = hexHmac(SECRET, body);
  const hexHeaders = ["x-gitea-signature", "x-forgejo-signature", "x-gogs-signature"].some((h) => headers.get(h) === hex);
  const prefixed = ["x-hub-signature-256", "x-hub-signature"].some((h) => headers.get(h) === `sha256=${hex}`);
  const token = headers.get("x-gitlab-token") === SECRET;
  const id = headers.get("webhook-id");
  const timestamp = headers.get("webhook-timestamp");
  const signed = id !== null && timestamp !== null && (headers.get("webhook-signature") ?? "").split(" ").includes(`v1,${gitlabSignature(SIGNING_TOKEN, id, timestamp, body)}`);
  return hexHeaders || prefixed || token || signed;
}

describe.each(FORGES)("%s deliveries, generated", (forge) => {
  test(`${RUNS} generated bodies and header sets: no 5xx, no deploy without a valid signature, no ref outside the target's`, async () => {
    site ??= await createSite("property");
    const target = await createTarget(site, {
      refs: "refs/heads/*",
      remote: `http://127.0.0.1:${await closedPort()}/site.git`,
      secrets: [new Secret(SECRET)],
      signingTokens: forge === "gitlab-signed" ? [new Secret(SIGNING_TOKEN)] : [],
    });
    const before = await snapshot(target);
    const parent = await readdir(dirname(target.repo));
    const inner = createMemoryHistory(RUNS + 10);
    const added: DeployRecord[] = [];
    const history: History = {
      ...inner,
      add(record) {
        added.push(record);
        inner.add(record);
      },
    };
    const deployer = createDeployer({ targets: [target], history, log: silentLogger, retry: { attempts: 1 } });
    const app = createApp({ target, deployer, log: silentLogger });
    const knownHeaders = Object.keys(forgeHeaders(forge, new Uint8Array(), { secret: "s" })).map((h) => h.toLowerCase());
    const statuses = new Map<number, number>();
    let queued = 0;
    const started = performance.now();

    await fc.assert(
      fc.asyncProperty(deliveries(forge, knownHeaders), async (g) => {
        const { headers, body } = buildRequest(forge, g);
        const count = added.length;
        const res = await app.request("/", { method: "POST", headers, body });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(res.status).toBeLessThan(500);
        if (res.status !== 202) {
          expect(added.length).toBe(count);
          return;
        }
        queued++;
        expect(added.length).toBe(count + 1);
        // Accepted: the request carried a valid signature over these very bytes.
        expect(carriesValidSignature(headers, body)).toBe(true);
        const record = added.at(-1)!;
        expect(checkRefFormat(record.ref)).toBeUndefined();
        expect(record.ref).toStartWith("refs/heads/");
        expect(record.commit).toMatch(/^[0-9a-f]{40}$/);
      }),
      { numRuns: RUNS, seed: Number(process.env.HOOKSD_SEED ?? 6) },
    );
    await deployer.idle();
    const ms = Math.round(performance.now() - started);
    console.log(`${forge}: ${RUNS} deliveries in ${ms} ms; statuses ${JSON.stringify(Object.fromEntries(statuses))}; ${queued} deploys queued`);

    // Some of each kind got through to the end: the property was not vacuous.
    expect(statuses.get(401) ?? 0).toBeGreaterThan(0);
    expect(queued).toBeGreaterThan(0);
    expect(await snapshot(target)).toEqual(before);
    await expectTreeEquals(target.repo, site.bare, site.base);
    expect(await readdir(dirname(target.repo))).toEqual(parent);
  });
});
