/**
 * The notify protocol in-process, against a real AF_UNIX datagram socket
 * bound by python3 (systemd's stand-in): path and abstract addresses, the
 * watchdog, the environment, and the systemd-notify fallback.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { createLogger, type Logger } from "../../src/log.ts";
import { createNotifier } from "../../src/systemd/notify.ts";
import { encodeSockaddrUn, NotifySocketError } from "../../src/systemd/notify-socket.ts";
import { makeTempDir, removeTempDirs } from "../helpers/git-fixture.ts";
import { startNotifyListener, type NotifyListener } from "./support.ts";

setDefaultTimeout(30_000);

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir("notify");
});
afterAll(removeTempDirs);

/** A logger whose lines the test can read. */
function recordingLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { log: createLogger((line) => lines.push(JSON.parse(line))), lines };
}

async function withListener(address: string, body: (listener: NotifyListener) => Promise<void>): Promise<void> {
  const listener = await startNotifyListener(address);
  try {
    await body(listener);
  } finally {
    await listener.stop();
  }
}

describe("sockaddr_un", () => {
  test("a path address carries the path and its terminating NUL after the address family", () => {
    const addr = encodeSockaddrUn("/run/systemd/notify");
    expect(addr.length).toBe(2 + "/run/systemd/notify".length + 1);
    expect(new DataView(addr.buffer).getUint16(0, true)).toBe(1); // AF_UNIX, little-endian hosts
    expect(new TextDecoder().decode(addr.subarray(2, -1))).toBe("/run/systemd/notify");
    expect(addr.at(-1)).toBe(0);
  });

  test("an abstract address starts with a NUL byte and its length counts the name's bytes only", () => {
    const addr = encodeSockaddrUn("@hooksd/notify");
    expect(addr.length).toBe(2 + 1 + "hooksd/notify".length);
    expect(addr[2]).toBe(0);
    expect(new TextDecoder().decode(addr.subarray(3))).toBe("hooksd/notify");
  });

  test("a relative path, a vsock address or a path longer than sun_path is refused", () => {
    expect(() => encodeSockaddrUn("run/notify")).toThrow(NotifySocketError);
    expect(() => encodeSockaddrUn("vsock:2:1234")).toThrow(NotifySocketError);
    expect(() => encodeSockaddrUn(`/${"x".repeat(107)}`)).toThrow("longer than 107 bytes");
    expect(encodeSockaddrUn(`/${"x".repeat(106)}`).length).toBe(110);
  });
});

describe("createNotifier", () => {
  test("without NOTIFY_SOCKET it is inactive and sends nothing, and says nothing either", async () => {
    const { log, lines } = recordingLog();
    const notifier = createNotifier({ env: { WATCHDOG_USEC: "100000" }, log });
    expect(notifier.active).toBe(false);
    notifier.ready();
    notifier.status("x");
    notifier.stopping();
    notifier.close();
    expect(lines).toEqual([]);
  });

  test("READY=1, STATUS= and STOPPING=1 reach a socket at a path, sent from this very process", async () => {
    const address = join(dir, "notify.sock");
    await withListener(address, async (listener) => {
      const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: address };
      const notifier = createNotifier({ env, log: recordingLog().log });
      expect(notifier.active).toBe(true);
      notifier.status("site: 0123456789ab\nsecond line");
      notifier.ready();
      notifier.stopping();
      await listener.waitFor((m) => m.message === "STOPPING=1", 10_000);
      notifier.close();
      expect(listener.messages).toEqual([
        { pid: process.pid, message: "STATUS=site: 0123456789ab second line" },
        { pid: process.pid, message: "READY=1" },
        { pid: process.pid, message: "STOPPING=1" },
      ]);
    });
  });

  test("an abstract socket ('@name') is reached too", async () => {
    const address = `@hooksd-test-${process.pid}-${Date.now()}`;
    await withListener(address, async (listener) => {
      const notifier = createNotifier({ env: { NOTIFY_SOCKET: address }, log: recordingLog().log });
      notifier.ready();
      expect(await listener.waitFor(() => true, 10_000)).toEqual({ pid: process.pid, message: "READY=1" });
      notifier.close();
    });
  });

  test("RELOADING=1 carries MONOTONIC_USEC on the system's monotonic clock", async () => {
    const address = join(dir, "reload.sock");
    await withListener(address, async (listener) => {
      const notifier = createNotifier({ env: { NOTIFY_SOCKET: address }, log: recordingLog().log });
      const uptime = async () => Number((await Bun.file("/proc/uptime").text()).split(" ")[0]) * 1e6;
      notifier.reloading();
      const { message } = await listener.waitFor(() => true, 10_000);
      const after = await uptime();
      notifier.close();
      const usec = Number(/^RELOADING=1\nMONOTONIC_USEC=(\d+)$/.exec(message)?.[1]);
      // /proc/uptime is CLOCK_BOOTTIME with 10 ms steps: monotonic time can trail it (suspend), never lead it.
      expect(usec).toBeLessThanOrEqual(after + 20_000);
      // Not a clock that started with this process (as process.hrtime's does in Bun): the system booted before it.
      expect(usec).toBeGreaterThan(performance.now() * 1000);
    });
  });

  test("WATCHDOG_USEC starts WATCHDOG=1 pings at half the period until close()", async () => {
    const address = join(dir, "watchdog.sock");
    await withListener(address, async (listener) => {
      const notifier = createNotifier({ env: { NOTIFY_SOCKET: address, WATCHDOG_USEC: "200000" }, log: recordingLog().log });
      await listener.waitFor((m) => m.message === "WATCHDOG=1", 10_000);
      await listener.waitFor((m) => m.message === "WATCHDOG=1", 10_000, listener.messages.length);
      notifier.close();
      const count = listener.messages.length;
      await Bun.sleep(400);
      expect(listener.messages.length).toBe(count);
      expect(new Set(listener.messages.map((m) => `${m.pid} ${m.message}`))).toEqual(new Set([`${process.pid} WATCHDOG=1`]));
    });
  });

  test("WATCHDOG_PID naming another process means no pings from this one", async () => {
    const address = join(dir, "watchdog-pid.sock");
    await withListener(address, async (listener) => {
      const notifier = createNotifier({ env: { NOTIFY_SOCKET: address, WATCHDOG_USEC: "100000", WATCHDOG_PID: String(process.pid + 1) }, log: recordingLog().log });
      await Bun.sleep(500);
      notifier.ready();
      await listener.waitFor((m) => m.message === "READY=1", 10_000);
      notifier.close();
      expect(listener.messages.map((m) => m.message)).toEqual(["READY=1"]);
    });
  });

  test("the notify variables leave the environment, so hooks and other children never inherit them", () => {
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: join(dir, "nobody.sock"), WATCHDOG_USEC: "1000000", WATCHDOG_PID: "1", KEEP: "1" };
    createNotifier({ env, log: recordingLog().log }).close();
    expect(env).toEqual({ KEEP: "1" });
  });

  test("a socket nobody listens on costs one warning, never an exception", () => {
    const { log, lines } = recordingLog();
    const notifier = createNotifier({ env: { NOTIFY_SOCKET: join(dir, "missing.sock") }, log });
    notifier.ready();
    notifier.status("a");
    notifier.close();
    expect(lines.map((l) => [l.level, l.msg])).toEqual([["warn", "sd_notify failed"]]);
    expect(String(lines[0]!.error)).toContain("missing.sock");
  });

  test("an unusable NOTIFY_SOCKET value is logged and ignored", () => {
    const { log, lines } = recordingLog();
    const notifier = createNotifier({ env: { NOTIFY_SOCKET: "vsock:2:9999" }, log });
    expect(notifier.active).toBe(false);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([["warn", "cannot use NOTIFY_SOCKET; systemd will not hear from hooksd"]]);
  });

  const systemdNotify = Bun.which("systemd-notify");
  test.skipIf(!systemdNotify)("the systemd-notify fallback delivers the same messages", async () => {
    const address = join(dir, "fallback.sock");
    await withListener(address, async (listener) => {
      const notifier = createNotifier({ env: { NOTIFY_SOCKET: address }, log: recordingLog().log, transport: "systemd-notify" });
      notifier.status("site: 0123456789ab");
      notifier.ready();
      await listener.waitFor((m) => m.message.includes("READY=1"), 10_000);
      notifier.close();
      // systemd-notify follows each message with BARRIER=1 (and an fd) to wait until systemd has read it.
      const messages = listener.messages.filter((m) => m.message !== "BARRIER=1");
      expect(messages.map((m) => m.message)).toEqual(["STATUS=site: 0123456789ab", "READY=1"]);
      // (As root it claims our PID as the sender; unprivileged, as under the unit's sandbox, it cannot: hence NotifyAccess=all.)
    });
  });
  if (!systemdNotify) console.log("skipped the systemd-notify fallback test: systemd-notify is not installed");
});
