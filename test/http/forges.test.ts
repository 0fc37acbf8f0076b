import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createConfigRef, type ConfigRef } from "../../src/config/config-ref.ts";
import type { LoadedTarget } from "../../src/config/loaded-target.ts";
import { Secret } from "../../src/config/secret.ts";
import { createDeployer } from "../../src/deploy/deployer.ts";
import { createApp } from "../../src/http/app.ts";
import { createLogger } from "../../src/log.ts";
import { ZERO_OID } from "../../src/providers/push-event.ts";
import { openDatabase } from "../../src/state/database.ts";
import { createSqliteDeliveryIds } from "../../src/state/delivery-ids.ts";
import { createMemoryHistory } from "../../src/state/history.ts";
import { commitFiles, createRemote, expectTreeEquals, git, makeTempDir, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { startGitServer, type GitServer } from "../helpers/git-server.ts";
import { fixtureBytes, fixtureJson, forgeHeaders, gitlabSignature, hexHmac, type Forge } from "../helpers/forge-deliveries.ts";

setDefaultTimeout(60_000);

const SECRET = "correct horse battery staple";
const SIGNING_TOKEN = `whsec_${Buffer.from("a signing key of thirty-two bytes").toString("base64")}`;

let server: GitServer;
let bare: string;
let work: string;
let c1: string;
let c2: string;
let tagObject: string;

beforeAll(async () => {
  const root = join(await makeTempDir("forges"), "repos");
  ({ bare, work } = await createRemote(root, "site.git"));
  c1 = await commitFiles(work, { "index.html": "<h1>one</h1>\n", "css/site.css": "body{}\n" }, "one");
  await push(work, "main");
  c2 = await commitFiles(work, { "index.html": "<h1>two</h1>\n", "about.html": "about\n" }, "two");
  await push(work, "main");
  await git(work, "tag", "-a", "v1.0.0", "-m", "release 1.0.0", c2);
  await git(work, "push", "--quiet", "origin", "refs/tags/v1.0.0");
  tagObject = await git(work, "rev-parse", "v1.0.0");
  server = await startGitServer({ root });
});

afterAll(async () => {
  await server.stop();
  await removeTempDirs();
});

interface Site {
  app: ReturnType<typeof createApp>;
  config: ConfigRef;
  history: ReturnType<typeof createMemoryHistory>;
  deployer: ReturnType<typeof createDeployer>;
  dir: string;
  logs: string[];
  stateDir: string;
  target: LoadedTarget;
}

async function makeSite(options: { refs?: string; name?: string; dir?: string; stateDir?: string } = {}): Promise<Site> {
  const dir = options.dir ?? join(await makeTempDir("site"), "www");
  const stateDir = options.stateDir ?? (await makeTempDir("state"));
  const target: LoadedTarget = {
    name: options.name ?? "www",
    repo: dir,
    remote: server.url("site.git"),
    refs: options.refs ?? "refs/heads/main",
    strategy: "in-place",
    force: false,
    fetchTimeoutSeconds: 60,
    secrets: [new Secret(SECRET)],
    signingTokens: [new Secret(SIGNING_TOKEN)],
    credentials: undefined,
  };
  const config = createConfigRef({ targets: [target] });
  const history = createMemoryHistory();
  const logs: string[] = [];
  const log = createLogger((line) => logs.push(line));
  const deployer = createDeployer({ targets: () => config.current().targets, history, log });
  const deliveryIds = createSqliteDeliveryIds(openDatabase(stateDir));
  const app = createApp({ config, deployer, log, deliveryIds });
  return { app, config, history, deployer, dir, logs, stateDir, target };
}

/** A checkout of c1 made with the git binary, to show that a refused delivery leaves it exactly as it was. */
async function deployedSite(): Promise<Site> {
  const site = await makeSite();
  await git(work, "clone", "--quiet", bare, site.dir);
  await git(site.dir, "reset", "--quiet", "--hard", c1);
  return site;
}

interface PushSpec {
  ref: string;
  before: string;
  after: string;
  commit: string;
}

interface FixtureCase {
  title: string;
  fixture: string;
  forge: Forge;
  provider: string;
  event?: string;
  refs?: string;
  /** Points the real payload at a real commit of the local test remote. */
  adapt(json: any, push: PushSpec): void;
  tag?: boolean;
}

const githubStyle = (json: any, p: PushSpec) => {
  Object.assign(json, { ref: p.ref, before: p.before, after: p.after });
  if (json.head_commit) json.head_commit.id = p.commit;
};

const pushCases: FixtureCase[] = [
  { title: "GitLab push", fixture: "gitlab-push.json", forge: "gitlab", provider: "gitlab", adapt: (j, p) => Object.assign(j, { ref: p.ref, before: p.before, after: p.after, checkout_sha: p.commit }) },
  { title: "GitLab push signed with a signing token", fixture: "gitlab-push.json", forge: "gitlab-signed", provider: "gitlab", adapt: (j, p) => Object.assign(j, { ref: p.ref, before: p.before, after: p.after, checkout_sha: p.commit }) },
  {
    title: "GitLab annotated tag push to a refs/tags/v* target",
    fixture: "gitlab-tag-push.json",
    forge: "gitlab",
    provider: "gitlab",
    event: "Tag Push Hook",
    refs: "refs/tags/v*",
    tag: true,
    adapt: (j, p) => Object.assign(j, { ref: p.ref, before: p.before, after: p.after, checkout_sha: p.commit }),
  },
  { title: "GitHub push", fixture: "github-push.json", forge: "github", provider: "github", adapt: githubStyle },
  { title: "GitHub annotated tag push", fixture: "github-push.json", forge: "github", provider: "github", refs: "refs/tags/v*", tag: true, adapt: githubStyle },
  { title: "Gitea push sent with all its GitHub- and Gogs-style headers", fixture: "gitea-push.json", forge: "gitea", provider: "gitea", adapt: githubStyle },
  { title: "Forgejo push", fixture: "gitea-push.json", forge: "forgejo", provider: "forgejo", adapt: githubStyle },
  { title: "Gogs push", fixture: "gitea-push.json", forge: "gogs", provider: "gogs", adapt: githubStyle },
  {
    title: "Bitbucket Cloud push",
    fixture: "bitbucket-cloud-push.json",
    forge: "bitbucket-cloud",
    provider: "bitbucket-cloud",
    adapt: (j, p) => {
      const change = j.push.changes[0];
      change.new.name = p.ref.replace("refs/heads/", "");
      change.new.target.hash = p.after;
    },
  },
  {
    title: "Bitbucket Data Center refs_changed",
    fixture: "bitbucket-server-refs-changed.json",
    forge: "bitbucket-server",
    provider: "bitbucket-server",
    adapt: (j, p) => {
      Object.assign(j.changes[0], { refId: p.ref, fromHash: p.before, toHash: p.after });
      j.changes[0].ref.id = p.ref;
    },
  },
];

async function delivery(c: FixtureCase, push: PushSpec, options: { secret?: string | undefined; id?: string } = {}) {
  const json = await fixtureJson(c.fixture);
  c.adapt(json, push);
  const body = new TextEncoder().encode(JSON.stringify(json));
  const secret = "secret" in options ? options.secret : c.forge === "gitlab-signed" ? SIGNING_TOKEN : SECRET;
  return { body, headers: forgeHeaders(c.forge, body, { secret, id: options.id, event: c.event }) };
}

function post(site: Site, d: { body: Uint8Array; headers: Record<string, string> }, path = "/hooks/www") {
  return site.app.request(path, { method: "POST", headers: d.headers, body: d.body });
}

const branchPush = (commit: string, before = ZERO_OID): PushSpec => ({ ref: "refs/heads/main", before, after: commit, commit });

describe("every forge's real push payload deploys the pushed commit", () => {
  for (const c of pushCases) {
    test(`${c.title} is verified, queued and deployed into a real checkout`, async () => {
      const site = await makeSite({ refs: c.refs });
      const spec = c.tag ? { ref: "refs/tags/v1.0.0", before: ZERO_OID, after: tagObject, commit: c2 } : branchPush(c2);
      // GitHub and Bitbucket Data Center name the tag object itself; the deploy peels it to the commit.
      if (c.tag && c.forge === "github") spec.commit = tagObject;
      const res = await post(site, await delivery(c, spec));
      const answer = (await res.json()) as { deploy: string };
      expect({ status: res.status, answer }).toMatchObject({ status: 202, answer: { target: "www", ref: spec.ref } });

      await site.deployer.idle();
      const record = site.history.get(answer.deploy);
      expect(record).toMatchObject({ state: "succeeded", provider: c.provider, commit: c2 });
      await expectTreeEquals(site.dir, bare, c2);
    });
  }

  test("a GitHub delivery sent form-encoded is verified over the form bytes and deploys", async () => {
    const site = await makeSite();
    const json = await fixtureJson("github-push.json");
    githubStyle(json, branchPush(c2));
    const body = new TextEncoder().encode(new URLSearchParams({ payload: JSON.stringify(json) }).toString());
    const headers = { ...forgeHeaders("github", body, { secret: SECRET }), "Content-Type": "application/x-www-form-urlencoded" };
    const res = await post(site, { body, headers });
    expect(res.status).toBe(202);
    await site.deployer.idle();
    await expectTreeEquals(site.dir, bare, c2);
  });

  test("the target's remote is fetched, never the clone URL the payload names", async () => {
    const site = await makeSite();
    const before = server.requests;
    const c = pushCases.find((x) => x.forge === "gitea")!;
    const json = await fixtureJson(c.fixture);
    expect(json.repository.clone_url).toBe("http://localhost:3000/gitea/webhooks.git");
    await post(site, await delivery(c, branchPush(c2)));
    await site.deployer.idle();
    expect(server.requests).toBeGreaterThan(before);
    await expectTreeEquals(site.dir, bare, c2);
  });
});

describe("deliveries without a valid signature", () => {
  for (const c of pushCases.filter((x) => !x.tag)) {
    for (const [what, secret] of [["a wrong", "not the secret"], ["no", undefined]] as const) {
      test(`${c.title} with ${what} signature gets 401, fetches nothing and leaves the checkout as it was`, async () => {
        const site = await deployedSite();
        server.requests = 0;
        const res = await post(site, await delivery(c, branchPush(c2, c1), { secret }));
        const answer = (await res.json()) as { error: string };
        expect({ status: res.status, error: answer.error }).toEqual({ status: 401, error: secret === undefined ? "MISSING_SIGNATURE" : "BAD_SIGNATURE" });
        await site.deployer.idle();
        expect(server.requests).toBe(0);
        expect(site.history.list()).toEqual([]);
        expect(await git(site.dir, "rev-parse", "HEAD")).toBe(c1);
        await expectTreeEquals(site.dir, bare, c1);
      });
    }
  }

  test("neither the 401 answer nor any log line holds the secret or the signature hooksd expected", async () => {
    const site = await makeSite();
    const leaks: string[] = [];
    for (const c of pushCases.filter((x) => !x.tag)) {
      const d = await delivery(c, branchPush(c2), { secret: "not the secret", id: "leak-test" });
      const expectedValues =
        c.forge === "gitlab-signed"
          ? [SIGNING_TOKEN, gitlabSignature(SIGNING_TOKEN, "leak-test", d.headers["webhook-timestamp"]!, d.body)]
          : [SECRET, hexHmac(SECRET, d.body)];
      const res = await post(site, d);
      const text = await res.text();
      expect(res.status).toBe(401);
      for (const value of expectedValues) {
        if (text.includes(value)) leaks.push(`${c.title}: answer holds ${value}`);
        if (site.logs.some((line) => line.includes(value))) leaks.push(`${c.title}: log holds ${value}`);
      }
    }
    expect(site.logs.length).toBeGreaterThan(0);
    expect(leaks).toEqual([]);
  });
});

describe("deletions and pings", () => {
  const ignoredCases: Array<{ title: string; fixture: string; forge: Forge; event?: string; reason: RegExp; adapt?: (j: any) => void }> = [
    { title: "GitHub's ping", fixture: "github-ping.json", forge: "github", event: "ping", reason: /GitHub ping: the webhook works; nothing to deploy/ },
    { title: "GitHub's tag deletion", fixture: "github-push-tag-delete.json", forge: "github", reason: /^refs\/tags\/simple-tag was deleted; a deletion never removes the site$/ },
    { title: "Bitbucket Cloud's branch deletion", fixture: "bitbucket-cloud-push-branch-deleted.json", forge: "bitbucket-cloud", reason: /^refs\/heads\/feature\/test was deleted/ },
    { title: "Bitbucket Data Center's branch deletion", fixture: "bitbucket-server-refs-changed-delete.json", forge: "bitbucket-server", reason: /^refs\/heads\/feature\/BB-1 was deleted/ },
    {
      title: "a GitLab deletion of the deployed branch",
      fixture: "gitlab-push.json",
      forge: "gitlab",
      reason: /^refs\/heads\/main was deleted/,
      adapt: (j) => Object.assign(j, { ref: "refs/heads/main", after: ZERO_OID, checkout_sha: null }),
    },
    {
      title: "a GitLab tag deletion",
      fixture: "gitlab-tag-push.json",
      forge: "gitlab",
      event: "Tag Push Hook",
      reason: /^refs\/tags\/v1\.0\.0 was deleted/,
      adapt: (j) => Object.assign(j, { before: c2, after: ZERO_OID, checkout_sha: null }),
    },
    { title: "Bitbucket Data Center's test connection", fixture: "bitbucket-server-refs-changed.json", forge: "bitbucket-server", event: "diagnostics:ping", reason: /Bitbucket ping/ },
  ];
  for (const c of ignoredCases) {
    test(`${c.title} is answered 200 with its reason and deploys nothing`, async () => {
      const site = await deployedSite();
      server.requests = 0;
      let body = await fixtureBytes(c.fixture);
      if (c.adapt) {
        const json = JSON.parse(new TextDecoder().decode(body));
        c.adapt(json);
        body = new TextEncoder().encode(JSON.stringify(json));
      }
      const res = await post(site, { body, headers: forgeHeaders(c.forge, body, { secret: SECRET, event: c.event }) });
      const answer = (await res.json()) as { ignored: string };
      expect(res.status).toBe(200);
      expect(answer.ignored).toMatch(c.reason);
      await site.deployer.idle();
      expect(server.requests).toBe(0);
      expect(site.history.list()).toEqual([]);
      await expectTreeEquals(site.dir, bare, c1);
    });
  }

  test("the captured Bitbucket Cloud delivery with its published signature passes verification (and its branch is not this target's)", async () => {
    const site = await makeSite();
    site.target.secrets.push(new Secret("Gkvl$k$wyNpQAF42"));
    const body = await fixtureBytes("bitbucket-cloud-push.json");
    const headers = { ...forgeHeaders("bitbucket-cloud", body), "X-Hub-Signature": "sha256=f205c729821c6954aff2afe72b965c34015b4baf96ea8ddc2cc44999c014a035" };
    const res = await post(site, { body, headers });
    expect({ status: res.status, body: await res.json() }).toEqual({
      status: 200,
      body: { ignored: "refs/heads/feature/webhook is not deployed by target www (it deploys refs/heads/main)" },
    });
  });
});

describe("routing to targets", () => {
  test("an unknown target name is a 404 that deploys nothing", async () => {
    const site = await makeSite();
    server.requests = 0;
    const res = await post(site, await delivery(pushCases[3]!, branchPush(c2)), "/hooks/nope");
    expect({ status: res.status, body: await res.json() }).toEqual({ status: 404, body: { error: "UNKNOWN_TARGET", message: "no target by that name" } });
    await site.deployer.idle();
    expect({ requests: server.requests, history: site.history.list(), exists: existsSync(site.dir) }).toEqual({ requests: 0, history: [], exists: false });
  });

  test("POST / serves the only target, and with several targets it is a 404 pointing at /hooks/<name>", async () => {
    const site = await makeSite();
    const res = await post(site, await delivery(pushCases[3]!, branchPush(c2)), "/");
    expect(res.status).toBe(202);
    await site.deployer.idle();
    const other = { ...site.target, name: "other", repo: join(await makeTempDir("other"), "www") };
    site.config.replace({ targets: [site.target, other] });
    const again = await post(site, await delivery(pushCases[3]!, branchPush(c2)), "/");
    expect({ status: again.status, body: await again.json() }).toEqual({
      status: 404,
      body: { error: "UNKNOWN_TARGET", message: "this server has 2 targets: post to /hooks/<name>" },
    });
    const named = await post(site, await delivery(pushCases[3]!, branchPush(c2)), "/hooks/other");
    expect(named.status).toBe(202);
    await site.deployer.idle();
    await expectTreeEquals(other.repo, bare, c2);
  });

  test("a deploy queued before a reload removed its target still finishes, with the target it was queued for", async () => {
    const site = await makeSite();
    const res = await post(site, await delivery(pushCases[3]!, branchPush(c2)));
    const { deploy } = (await res.json()) as { deploy: string };
    site.config.replace({ targets: [] });
    await site.deployer.idle();
    expect(site.history.get(deploy)?.state).toBe("succeeded");
    await expectTreeEquals(site.dir, bare, c2);
    const after = await post(site, await delivery(pushCases[3]!, branchPush(c2)));
    expect(after.status).toBe(404);
  });

  test("a Bitbucket push changing several refs deploys the one the target follows", async () => {
    const site = await makeSite();
    const json = await fixtureJson("bitbucket-cloud-push.json");
    const change = json.push.changes[0];
    const elsewhere = structuredClone(change);
    elsewhere.new.name = "feature/x";
    change.new.name = "main";
    change.new.target.hash = c2;
    json.push.changes = [elsewhere, change];
    const body = new TextEncoder().encode(JSON.stringify(json));
    const res = await post(site, { body, headers: forgeHeaders("bitbucket-cloud", body, { secret: SECRET }) });
    expect({ status: res.status, body: await res.json() }).toMatchObject({ status: 202, body: { ref: "refs/heads/main", commit: c2 } });
    await site.deployer.idle();
    await expectTreeEquals(site.dir, bare, c2);
  });
});

describe("redeliveries", () => {
  const github = pushCases.find((c) => c.forge === "github")!;

  test("a redelivered id is answered {duplicate} and deploys once", async () => {
    const site = await makeSite();
    const d = await delivery(github, branchPush(c2), { id: "72d3162e-cc78-11e3-81ab-4c9367dc0958" });
    expect((await post(site, d)).status).toBe(202);
    const again = await post(site, d);
    expect({ status: again.status, body: await again.json() }).toEqual({ status: 200, body: { duplicate: "72d3162e-cc78-11e3-81ab-4c9367dc0958" } });
    await site.deployer.idle();
    expect(site.history.list().map((r) => r.state)).toEqual(["succeeded"]);
  });

  test("a redelivery after a restart on the same state dir is still recognized", async () => {
    const first = await makeSite();
    for (const c of pushCases.filter((x) => !x.tag)) {
      expect((await post(first, await delivery(c, branchPush(c2), { id: `restart-${c.forge}` }))).status).toBe(202);
    }
    await first.deployer.idle();
    const second = await makeSite({ dir: first.dir, stateDir: first.stateDir });
    for (const c of pushCases.filter((x) => !x.tag)) {
      const res = await post(second, await delivery(c, branchPush(c2), { id: `restart-${c.forge}` }));
      expect({ forge: c.forge, status: res.status, body: await res.json() }).toEqual({ forge: c.forge, status: 200, body: { duplicate: `restart-${c.forge}` } });
    }
    await second.deployer.idle();
    expect(second.history.list()).toEqual([]);
  });

  test("an id seen only in a delivery that failed verification still deploys when the real delivery comes", async () => {
    const site = await makeSite();
    expect((await post(site, await delivery(github, branchPush(c2), { id: "poison", secret: "guess" }))).status).toBe(401);
    expect((await post(site, await delivery(github, branchPush(c2), { id: "poison" }))).status).toBe(202);
    await site.deployer.idle();
    await expectTreeEquals(site.dir, bare, c2);
  });

  test("an ignored delivery does not use up its id: redelivered after the config is fixed, it deploys", async () => {
    const site = await makeSite({ refs: "refs/heads/production" });
    const d = await delivery(github, branchPush(c2), { id: "fixed-later" });
    const first = await post(site, d);
    expect({ status: first.status, body: await first.json() }).toMatchObject({ status: 200, body: { ignored: expect.stringContaining("not deployed") } });
    site.config.replace({ targets: [{ ...site.target, refs: "refs/heads/main" }] });
    expect((await post(site, d)).status).toBe(202);
    await site.deployer.idle();
    await expectTreeEquals(site.dir, bare, c2);
  });
});

describe("never backwards", () => {
  const github = pushCases.find((c) => c.forge === "github")!;

  test("an older commit delivered after a newer one leaves the newer one deployed, recorded as superseded", async () => {
    const site = await makeSite();
    await post(site, await delivery(github, branchPush(c2, c1)));
    await site.deployer.idle();
    const res = await post(site, await delivery(github, branchPush(c1)));
    const { deploy } = (await res.json()) as { deploy: string };
    expect(res.status).toBe(202);
    await site.deployer.idle();
    const record = site.history.get(deploy);
    expect(record?.state).toBe("superseded");
    expect(record?.reason).toBe(`pushed commit ${c1} is older than the deployed ${c2} (an ancestor of it); the site stays at ${c2}`);
    expect(await git(site.dir, "rev-parse", "HEAD")).toBe(c2);
    await expectTreeEquals(site.dir, bare, c2);
    expect(site.logs.some((line) => line.includes('"msg":"deploy superseded"') && line.includes(deploy))).toBe(true);
    const status = (await (await site.app.request("/status")).json()) as { targets: Array<{ deployedCommit: string; lastDeploy: { state: string; reason: string } }> };
    expect(status.targets[0]).toMatchObject({ deployedCommit: c2, lastDeploy: { state: "superseded", reason: record!.reason } });
  });

  test("a newer commit after an older one deploys as usual", async () => {
    const site = await makeSite();
    await post(site, await delivery(github, branchPush(c1)));
    await site.deployer.idle();
    await expectTreeEquals(site.dir, bare, c1);
    const res = await post(site, await delivery(github, branchPush(c2, c1)));
    const { deploy } = (await res.json()) as { deploy: string };
    await site.deployer.idle();
    expect(site.history.get(deploy)?.state).toBe("succeeded");
    await expectTreeEquals(site.dir, bare, c2);
  });
});
