/**
 * Hostile clients over a real socket: one that trickles its body, one that
 * sends nothing after the headers, bodies past 25 MB (announced or streamed),
 * and a flood of badly signed deliveries against a spawned daemon whose
 * memory is measured from /proc.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LoadedTarget } from "../../src/config/loaded-target.ts";
import { createDeployer } from "../../src/deploy/deployer.ts";
import { createApp, MAX_BODY_BYTES } from "../../src/http/app.ts";
import { silentLogger } from "../../src/log.ts";
import { createMemoryHistory } from "../../src/state/history.ts";
import { FROM_SOURCE, startDaemon, type Daemon } from "../daemon/support.ts";
import { readMemory } from "../helpers/proc-memory.ts";
import { expectTreeEquals, removeTempDirs } from "../helpers/git-fixture.ts";
import { openRaw, requestHead } from "../helpers/raw-http.ts";
import { createSite, createTarget, gitlabHeaders, gitlabPayload, SECRET, type Site } from "../http/harness.ts";

setDefaultTimeout(120_000);

let site: Site;
beforeAll(async () => {
  site = await createSite("socket");
});
afterAll(async () => {
  await site.server.stop();
  await removeTempDirs();
});

const MB = 1024 * 1024;

describe("slow clients, over a socket to Bun.serve running the app", () => {
  const BODY_TIMEOUT_MS = 1000;

  async function serveApp(target: LoadedTarget) {
    const history = createMemoryHistory();
    const deployer = createDeployer({ targets: [target], history, log: silentLogger });
    const app = createApp({ target, deployer, log: silentLogger, bodyTimeoutMs: BODY_TIMEOUT_MS });
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch, maxRequestBodySize: MAX_BODY_BYTES + 64 * 1024 });
    return { server, history, deployer, url: server.url.href, stop: () => server.stop(true) };
  }

  test("a client that sends its headers and then trickles the body a byte at a time is cut off with 408", async () => {
    const target = await createTarget(site);
    const s = await serveApp(target);
    try {
      const body = Buffer.from(await gitlabPayload("gitlab-push.json", { after: site.next, checkout_sha: site.next }));
      const conn = await openRaw(s.url);
      await conn.write(requestHead("/", "127.0.0.1", { ...gitlabHeaders(), "Content-Length": String(body.length) }));
      let sent = 0;
      const status = conn.status();
      // One byte every 100 ms: the whole body would take minutes.
      while (sent < body.length && !conn.isClosed() && !/^HTTP/.test(conn.received())) {
        if (!(await conn.write(body.subarray(sent, sent + 1)))) break;
        sent++;
        await Bun.sleep(100);
      }
      expect(await status).toBe(408);
      expect(conn.received()).toContain('"error":"BODY_TIMEOUT"');
      expect(sent).toBeLessThan(body.length);
      console.log(`trickling client: cut off with 408 after ${sent} of ${body.length} body bytes`);
      conn.socket.destroy();

      expect(s.history.list()).toEqual([]);
      expect((await fetch(new URL("/healthz", s.url))).status).toBe(200);
      await expectTreeEquals(target.repo, site.bare, site.base);
    } finally {
      await s.stop();
    }
  });

  test("a client that sends its headers and then nothing is cut off with 408", async () => {
    const target = await createTarget(site);
    const s = await serveApp(target);
    try {
      const conn = await openRaw(s.url);
      await conn.write(requestHead("/", "127.0.0.1", { ...gitlabHeaders(), "Content-Length": "5000" }));
      expect(await conn.status()).toBe(408);
      conn.socket.destroy();
      expect(s.history.list()).toEqual([]);
      await expectTreeEquals(target.repo, site.bare, site.base);
    } finally {
      await s.stop();
    }
  });
});

describe("oversized bodies and a flood, against a spawned daemon", () => {
  let daemon: Daemon;
  let target: LoadedTarget;

  beforeAll(async () => {
    target = await createTarget(site);
    const secretFile = join(site.tmp, "socket-secret");
    await writeFile(secretFile, SECRET, { mode: 0o600 });
    daemon = await startDaemon(FROM_SOURCE, ["--repo", target.repo, "--remote", site.url, "--secret-file", secretFile, "--state-dir", join(site.tmp, "socket-state")]);
  });
  afterAll(async () => {
    daemon.proc.kill("SIGTERM");
    expect(await daemon.exited).toBe(0);
  });

  async function lastDeploy(): Promise<unknown> {
    const status = (await (await fetch(new URL("/status", daemon.url))).json()) as { targets: Array<{ lastDeploy?: unknown }> };
    return status.targets[0]?.lastDeploy;
  }

  // Takes the daemon's real 30 s body deadline: long runs only.
  test.skipIf(!process.env.HOOKSD_LONG)("a client trickling its body to the daemon is answered 408 at the 30 s deadline, before Bun's idle timeout drops it silently", async () => {
    const conn = await openRaw(daemon.url);
    await conn.write(requestHead("/", "127.0.0.1", { ...gitlabHeaders(), "Content-Length": "1000" }));
    const started = performance.now();
    let sent = 0;
    while (sent < 1000 && !conn.isClosed() && !conn.received()) {
      await conn.write("x");
      sent++;
      await Bun.sleep(1000);
    }
    expect(await conn.status()).toBe(408);
    console.log(`trickling client to the daemon: 408 after ${Math.round(performance.now() - started)} ms and ${sent} body bytes`);
    conn.socket.destroy();
    expect(await lastDeploy()).toBeUndefined();
  });

  test("a body announced as 30 MB is answered 413 before it is sent", async () => {
    const conn = await openRaw(daemon.url);
    await conn.write(requestHead("/", "127.0.0.1", { ...gitlabHeaders(), "Content-Length": String(30 * MB) }));
    expect(await conn.status()).toBe(413);
    conn.socket.destroy();
    expect(await lastDeploy()).toBeUndefined();
    expect(daemon.proc.exitCode).toBeNull();
  });

  test("a chunked body streamed past 25 MB is answered 413 without the daemon holding much more than the limit", async () => {
    const before = await readMemory(daemon.proc.pid);
    const conn = await openRaw(daemon.url);
    await conn.write(requestHead("/", "127.0.0.1", { ...gitlabHeaders(), "Transfer-Encoding": "chunked" }));
    const chunk = Buffer.concat([Buffer.from(`${MB.toString(16)}\r\n`), Buffer.alloc(MB, 0x20), Buffer.from("\r\n")]);
    let sentMb = 0;
    const status = conn.status();
    // Up to 60 MB; the daemon must answer (or hang up) long before.
    while (sentMb < 60 && !conn.isClosed() && !/^HTTP/.test(conn.received())) {
      if (!(await conn.write(chunk))) break;
      sentMb++;
      // Past the limit, give the answer time to arrive before writing more: a
      // server that hangs up with unread bytes sends a reset, which can
      // overtake the 413 it has just written.
      if (sentMb * MB > MAX_BODY_BYTES) await Bun.sleep(50);
    }
    const got = await status;
    if (got !== 413) console.log(`no 413 after ${sentMb} MB; received ${JSON.stringify(conn.received())}`);
    expect(got).toBe(413);
    conn.socket.destroy();
    const after = await readMemory(daemon.proc.pid);
    console.log(`chunked oversized body: 413 after ${sentMb} MB sent; daemon RSS ${before.rssKb} kB -> ${after.rssKb} kB, peak (VmHWM) ${before.hwmKb} kB -> ${after.hwmKb} kB`);
    expect(sentMb).toBeGreaterThan(MAX_BODY_BYTES / MB);
    // The limit is held at most once (25 MB) plus the runtime's own buffers.
    expect(after.hwmKb - before.hwmKb).toBeLessThan(100 * 1024);
    expect(await lastDeploy()).toBeUndefined();
  });

  test("a flood of 2,000 badly signed deliveries is answered 401 every time, and the daemon's memory stays bounded", async () => {
    const body = await gitlabPayload("gitlab-push.json", { after: site.next, checkout_sha: site.next });
    // Settle first: the measurements compare steady states.
    for (let i = 0; i < 20; i++) await fetch(daemon.url, { method: "POST", headers: gitlabHeaders({ token: "warm-up" }), body });
    const before = await readMemory(daemon.proc.pid);
    const statuses = new Map<number, number>();
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < 2000) {
          next++;
          const res = await fetch(daemon.url, { method: "POST", headers: gitlabHeaders({ token: `wrong-${next}` }), body });
          await res.arrayBuffer();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        }
      }),
    );
    const ms = Math.round(performance.now() - started);
    const after = await readMemory(daemon.proc.pid);
    console.log(
      `flood: 2000 bad-signature requests in ${ms} ms, statuses ${JSON.stringify(Object.fromEntries(statuses))}; ` +
        `daemon RSS ${before.rssKb} kB -> ${after.rssKb} kB (${after.rssKb - before.rssKb >= 0 ? "+" : ""}${after.rssKb - before.rssKb} kB), VmHWM ${before.hwmKb} kB -> ${after.hwmKb} kB`,
    );
    expect(Object.fromEntries(statuses)).toEqual({ 401: 2000 });
    expect(after.rssKb - before.rssKb).toBeLessThan(100 * 1024);
    expect(daemon.proc.exitCode).toBeNull();
    expect(await lastDeploy()).toBeUndefined();
    await expectTreeEquals(target.repo, site.bare, site.base);
  });
});
