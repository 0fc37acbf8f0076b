import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Secret } from "../../src/config/secret.ts";
import { createDeployer } from "../../src/deploy/deployer.ts";
import { createApp } from "../../src/http/app.ts";
import { silentLogger } from "../../src/log.ts";
import { createMetrics } from "../../src/metrics/hooksd-metrics.ts";
import { openDatabase } from "../../src/state/database.ts";
import { boundHookOutput, createSqliteHistory, HOOK_OUTPUT_LIMIT, type DeployRecord } from "../../src/state/history.ts";
import { git, makeTempDir, removeTempDirs } from "../helpers/git-fixture.ts";
import { gitlabPush } from "../daemon/support.ts";
import { createSite, createTarget, type Site } from "./harness.ts";
import { parseExposition, valueOf } from "../helpers/prometheus.ts";

setDefaultTimeout(60_000);

const ADMIN_TOKEN = "hooksd-admin-token-Zr4tLm91";
let site: Site;

beforeAll(async () => {
  site = await createSite("admin");
});
afterAll(async () => {
  await site.server.stop();
  await removeTempDirs();
});

/** An app wired as serve wires it (sqlite history in a fresh state dir, observed by the metrics), on a fresh checkout at base. */
async function setup(adminToken?: string) {
  const stateDir = await makeTempDir("admin-state");
  const db = openDatabase(stateDir);
  const target = await createTarget(site);
  const metrics = createMetrics();
  const history = metrics.observe(createSqliteHistory(db), [target.name]);
  const deployer = createDeployer({ targets: [target], history, log: silentLogger });
  const app = createApp({ target, deployer, log: silentLogger, history, metrics, adminToken: adminToken === undefined ? undefined : new Secret(adminToken) });
  /** A request as if it came over a socket from `clientAddress`. */
  const request = (path: string, clientAddress: string, init: RequestInit = {}) => Promise.resolve(app.request(path, init, { clientAddress }));
  return { history, deployer, request, target };
}

const ADMIN_PATHS = ["/status", "/metrics", "/deploys/20261122T000000000Z-000000"];

describe("admin endpoints", () => {
  test("answer loopback clients (IPv4, IPv6 and IPv4-mapped) without a token", async () => {
    const { request } = await setup();
    for (const address of ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]) {
      expect((await request("/status", address)).status).toBe(200);
      expect((await request("/metrics", address)).status).toBe(200);
      // An unknown id is a 404, not a refusal: access was granted.
      expect((await request("/deploys/20261122T000000000Z-000000", address)).status).toBe(404);
    }
  });

  test("refuse a non-loopback client with 403 when no admin token is configured, while /healthz stays open", async () => {
    const { request } = await setup();
    for (const path of ADMIN_PATHS) {
      const res = await request(path, "192.0.2.7", { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: string }).error).toBe("FORBIDDEN");
    }
    // Addresses that only look local, and an address the transport could not tell, are not loopback.
    for (const address of ["", "::ffff:192.0.2.7", "10.127.0.1", "128.0.0.1", "::2"]) expect((await request("/metrics", address)).status).toBe(403);
    expect((await request("/healthz", "192.0.2.7")).status).toBe(200);
  });

  test("let a non-loopback client in only with the exact bearer token, answering 401 with WWW-Authenticate otherwise", async () => {
    const { request } = await setup(ADMIN_TOKEN);
    const wrong = [undefined, "Bearer nope", `Bearer ${ADMIN_TOKEN}x`, `Basic ${btoa(`x:${ADMIN_TOKEN}`)}`, `Bearer ${ADMIN_TOKEN.slice(0, -1)}`];
    for (const path of ADMIN_PATHS) {
      for (const authorization of wrong) {
        const res = await request(path, "192.0.2.7", authorization ? { headers: { Authorization: authorization } } : {});
        expect(res.status).toBe(401);
        expect(res.headers.get("www-authenticate")).toBe('Bearer realm="hooksd"');
        expect(await res.text()).not.toContain(ADMIN_TOKEN);
      }
    }
    const ok = await request("/metrics", "192.0.2.7", { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect((await request("/status", "127.0.0.1")).status).toBe(200);
  });

  test("GET /deploys/:id returns the whole record from the history, hook output included", async () => {
    const { request, history, deployer, target } = await setup();
    const push = await gitlabPush(site.base, site.next);
    const accepted = (await (await request("/", "127.0.0.1", { method: "POST", headers: push.headers, body: push.body })).json()) as { deploy: string };
    await deployer.idle();
    // What the hooks step stores (another issue's work); the endpoint shows it as recorded.
    history.update(accepted.deploy, { hookOutput: boundHookOutput("x".repeat(HOOK_OUTPUT_LIMIT + 10)) });

    const res = await request(`/deploys/${accepted.deploy}`, "127.0.0.1");
    expect(res.status).toBe(200);
    const record = (await res.json()) as DeployRecord;
    expect(record).toMatchObject({ id: accepted.deploy, target: "site", provider: "gitlab", ref: "refs/heads/main", state: "succeeded", previous: site.base, commit: site.next });
    expect(record.deliveryId).toBe(push.headers["Idempotency-Key"]!);
    expect(Object.keys(record.timings).sort()).toEqual(["checkout", "fetch"]);
    expect(record.hookOutput).toStartWith("[... 10 characters cut ...]\n");
    expect(record.hookOutput!.length).toBeLessThan(HOOK_OUTPUT_LIMIT + 100);
    expect(await git(target.repo, "rev-parse", "HEAD")).toBe(site.next);

    const missing = await request("/deploys/nope", "127.0.0.1");
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toBe("NO_SUCH_DEPLOY");
  });
});

describe("GET /metrics", () => {
  test("is valid Prometheus text exposition counting deliveries, deploy states, durations and the last success", async () => {
    const { request, deployer, history } = await setup();
    const push = await gitlabPush(site.base, site.next);
    const post = (headers: Record<string, string>, body: string) => request("/", "127.0.0.1", { method: "POST", headers, body });
    expect((await post(push.headers, push.body)).status).toBe(202);
    await deployer.idle();
    expect((await post({ ...push.headers, "X-Gitlab-Token": "wrong" }, push.body)).status).toBe(401);
    expect((await post(push.headers, "{not json")).status).toBe(400);
    expect((await post({ ...push.headers, "X-Gitlab-Event": "Issue Hook" }, push.body)).status).toBe(200);
    expect((await post({ "Content-Type": "application/json" }, "{}")).status).toBe(400);

    const text = await (await request("/metrics", "127.0.0.1")).text();
    const m = parseExposition(text);
    expect([...m.types]).toEqual([
      ["hooksd_deliveries_total", "counter"],
      ["hooksd_deploys_total", "counter"],
      ["hooksd_deploy_duration_seconds", "histogram"],
      ["hooksd_last_success_timestamp_seconds", "gauge"],
    ]);
    for (const name of m.types.keys()) expect(m.help.get(name)).toBeTruthy();
    for (const sample of m.samples) expect(sample.name).toStartWith("hooksd_");

    const deliveries = (provider: string, status: string) => valueOf(m, "hooksd_deliveries_total", { provider, status });
    expect(deliveries("gitlab", "202")).toBe(1);
    expect(deliveries("gitlab", "401")).toBe(1);
    expect(deliveries("gitlab", "400")).toBe(1);
    expect(deliveries("gitlab", "200")).toBe(1);
    expect(deliveries("unknown", "400")).toBe(1);

    for (const state of ["queued", "running", "succeeded"]) expect(valueOf(m, "hooksd_deploys_total", { target: "site", state })).toBe(1);
    expect(valueOf(m, "hooksd_deploys_total", { target: "site", state: "failed" })).toBeUndefined();

    const buckets = m.samples.filter((s) => s.name === "hooksd_deploy_duration_seconds_bucket");
    const les = buckets.map((b) => (b.labels.le === "+Inf" ? Infinity : Number(b.labels.le)));
    expect(les).toEqual([...les].sort((a, b) => a - b));
    expect(les.at(-1)).toBe(Infinity);
    const counts = buckets.map((b) => b.value);
    expect(counts).toEqual([...counts].sort((a, b) => a - b)); // cumulative
    expect(counts.at(-1)).toBe(1);
    expect(valueOf(m, "hooksd_deploy_duration_seconds_count", { target: "site" })).toBe(1);
    const [record] = history.list({ target: "site" });
    const seconds = (Date.parse(record!.finishedAt!) - Date.parse(record!.startedAt!)) / 1000;
    expect(valueOf(m, "hooksd_deploy_duration_seconds_sum", { target: "site" })).toBeCloseTo(seconds, 6);
    expect(valueOf(m, "hooksd_last_success_timestamp_seconds", { target: "site" })).toBe(Date.parse(record!.finishedAt!) / 1000);
  });

  test("reads the last success back from the history after a restart", async () => {
    const stateDir = await makeTempDir("metrics-restart");
    const finishedAt = "2026-11-21T23:00:00.000Z";
    const earlier = createSqliteHistory(openDatabase(stateDir));
    const base = { target: "site", provider: "gitlab" as const, deliveryId: undefined, ref: "refs/heads/main", timings: {} };
    earlier.add({ ...base, id: "20261121T225959000Z-aaaaaa", commit: site.next, previous: site.base, state: "succeeded", error: undefined,
      queuedAt: "2026-11-21T22:59:59.000Z", startedAt: "2026-11-21T22:59:59.500Z", finishedAt });
    earlier.add({ ...base, id: "20261121T230100000Z-bbbbbb", commit: site.base, previous: site.next, state: "failed", error: "boom",
      queuedAt: "2026-11-21T23:01:00.000Z", startedAt: "2026-11-21T23:01:00.000Z", finishedAt: "2026-11-21T23:01:01.000Z" });

    const metrics = createMetrics();
    metrics.observe(createSqliteHistory(openDatabase(stateDir)), ["site", "other"]);
    const m = parseExposition(metrics.render());
    expect(valueOf(m, "hooksd_last_success_timestamp_seconds", { target: "site" })).toBe(Date.parse(finishedAt) / 1000);
    expect(valueOf(m, "hooksd_last_success_timestamp_seconds", { target: "other" })).toBeUndefined();
    // Counters are per process, as Prometheus expects.
    expect(m.samples.filter((s) => s.name === "hooksd_deploys_total")).toEqual([]);
  });

  test("the exposition reader these tests use rejects malformed text", () => {
    expect(() => parseExposition("hooksd_x 1\n")).toThrow("sample before its TYPE line");
    expect(() => parseExposition('# TYPE hooksd_x counter\nhooksd_x{a="1} 1\n')).toThrow("bad label");
    expect(() => parseExposition("# TYPE hooksd_x counter\nhooksd_x one\n")).toThrow("bad value");
    expect(() => parseExposition("# TYPE hooksd_x counter\nhooksd_x 1")).toThrow("newline");
    expect(() => parseExposition("# TYPE hooksd_x counter\n# TYPE hooksd_x gauge\n")).toThrow("second TYPE");
    expect(parseExposition('# TYPE hooksd_x counter\nhooksd_x{a="q\\"x"} 2\n').samples).toEqual([{ name: "hooksd_x", labels: { a: 'q"x' }, value: 2 }]);
  });
});
