/**
 * Shared set-up for the HTTP tests: a real remote served by the real git
 * server, a fresh checkout per test, and an app wired to a real deployer.
 * Not a test file itself.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "bun:test";
import type { LoadedTarget } from "../../src/config/loaded-target.ts";
import { Secret, type Credentials } from "../../src/config/secret.ts";
import { createDeployer, type Deployer } from "../../src/deploy/deployer.ts";
import { createApp } from "../../src/http/app.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import { createMemoryHistory, type DeployRecord, type History } from "../../src/state/history.ts";
import { ZERO_OID } from "../../src/providers/push-event.ts";
import { commitFiles, createRemote, expectTreeEquals, git, makeTempDir, push } from "../helpers/git-fixture.ts";
import { startGitServer, type GitServer, type GitServerOptions } from "../helpers/git-server.ts";
import { testTarget } from "../helpers/test-target.ts";

export const FIXTURES = join(import.meta.dir, "../../../shared/fixtures/webhooks");

/** Distinctive, so that a leak anywhere is unmistakable. */
export const SECRET = "hooksd-test-secret-Q7vXk2mZ9pWc4R";

export { ZERO_OID };

export async function fixtureText(name: "gitlab-push.json" | "gitlab-tag-push.json"): Promise<string> {
  return readFile(join(FIXTURES, name), "utf8");
}

/** A GitLab fixture with the fields that must name real commits replaced, re-serialized. */
export async function gitlabPayload(
  name: "gitlab-push.json" | "gitlab-tag-push.json",
  patch: { ref?: string; before?: string; after?: string; checkout_sha?: string | null } = {},
): Promise<string> {
  const payload = JSON.parse(await fixtureText(name)) as Record<string, unknown>;
  return JSON.stringify({ ...payload, ...patch });
}

/** The headers GitLab sends (SOURCES.md), with the event and token chosen by the test. */
export function gitlabHeaders(options: { event?: string; token?: string | null; deliveryId?: string } = {}): Record<string, string> {
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    "User-Agent": "GitLab/17.1.0-pre",
    "Idempotency-Key": options.deliveryId ?? crypto.randomUUID(),
    "X-Gitlab-Event": options.event ?? "Push Hook",
    "X-Gitlab-Webhook-UUID": "3c5c0404-c866-44bc-a5f6-452bb1bfc76e",
    "X-Gitlab-Instance": "https://gitlab.example.com",
    "X-Gitlab-Event-UUID": crypto.randomUUID(),
  };
  const token = options.token === undefined ? SECRET : options.token;
  if (token !== null) headers["X-Gitlab-Token"] = token;
  return headers;
}

export interface Site {
  tmp: string;
  bare: string;
  work: string;
  server: GitServer;
  /** The commit every fresh checkout starts at (main's first commit). */
  base: string;
  /** A later commit on main, not yet deployed anywhere. */
  next: string;
  url: string;
}

/** One remote with two commits on main, served over smart HTTP. One per test file. */
export async function createSite(prefix: string, serverOptions: Omit<GitServerOptions, "root"> = {}): Promise<Site> {
  const tmp = await makeTempDir(prefix);
  const root = join(tmp, "repos");
  const { bare, work } = await createRemote(root, "site.git");
  const base = await commitFiles(work, { "index.html": "<h1>base</h1>\n", "css/site.css": "body{}\n" }, "base");
  const next = await commitFiles(work, { "index.html": "<h1>next</h1>\n", "about.html": "about\n" }, "next");
  await push(work);
  const server = await startGitServer({ root, ...serverOptions });
  return { tmp, bare, work, server, base, next, url: server.url("site.git") };
}

/**
 * A fresh checkout of the site at `site.base`, cloned by path (so the server
 * sees nothing), and a target deploying it from the server. The checkout is
 * `<parent>/site`, in a new temporary directory unless `parent` is given.
 */
export async function createTarget(site: Site, overrides: Partial<LoadedTarget> = {}, parent?: string): Promise<LoadedTarget> {
  parent ??= await makeTempDir("checkout");
  const repo = join(parent, "site");
  await git(parent, "clone", "--quiet", "--no-checkout", site.bare, repo);
  await git(repo, "checkout", "--quiet", "-B", "main", site.base);
  return testTarget({ repo, remote: site.url, secrets: [new Secret(SECRET)], ...overrides });
}

export interface Harness {
  app: ReturnType<typeof createApp>;
  deployer: Deployer;
  history: History;
  /** Every record ever added, by id, as last updated. */
  records(): DeployRecord[];
  /** Every log line written, as text (the sink's exact output). */
  logText(): string;
  log: Logger;
}

export function createHarness(target: LoadedTarget, options: { history?: History } = {}): Harness {
  const lines: string[] = [];
  const log = createLogger((line) => lines.push(line));
  const inner = options.history ?? createMemoryHistory();
  const ids: string[] = [];
  const history: History = {
    ...inner,
    add(record) {
      ids.push(record.id);
      inner.add(record);
    },
  };
  const deployer = createDeployer({ targets: [target], history, log });
  const app = createApp({ target, deployer, log });
  return {
    app,
    deployer,
    history,
    records: () => ids.map((id) => history.get(id)!),
    logText: () => lines.join(""),
    log,
  };
}

/** POST / as GitLab would send it. */
export function deliver(h: Harness, body: RequestInit["body"], headers: Record<string, string> = gitlabHeaders()): Promise<Response> {
  return Promise.resolve(h.app.request("/", { method: "POST", headers, body }));
}

/** What "nothing happened" means for a checkout: its HEAD commit and every tracked file. */
export interface Snapshot {
  head: string;
  status: string;
}

export async function snapshot(target: LoadedTarget): Promise<Snapshot> {
  return {
    head: await git(target.repo, "rev-parse", "HEAD"),
    status: await git(target.repo, "status", "--porcelain", "--untracked-files=all"),
  };
}

/**
 * Nothing was deployed: the git server saw no request, no deploy was recorded,
 * and the checkout is exactly as it was.
 */
export async function expectNothingDeployed(h: Harness, site: Site, target: LoadedTarget, before: Snapshot): Promise<void> {
  await h.deployer.idle();
  expect(site.server.requests).toBe(0);
  expect(h.records()).toEqual([]);
  const [status] = await h.deployer.status();
  expect(status?.lastDeploy).toBeUndefined();
  expect(await snapshot(target)).toEqual(before);
  await expectTreeEquals(target.repo, site.bare, before.head);
}

/** Every path (files and directories) under `dir`, relative, recursively; .git included. */
export async function listAll(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.map(String);
}

export function credentials(username: string, password: string): Credentials {
  return { username, password: new Secret(password) };
}
