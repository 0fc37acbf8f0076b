/**
 * The compiled executable as systemd runs it: secrets from $CREDENTIALS_DIRECTORY,
 * and the notify protocol spoken to a real AF_UNIX datagram socket (python3).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Subprocess } from "bun";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGitServer, type GitServer } from "../helpers/git-server.ts";
import { commitFiles, createRemote, git, makeTempDir, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { LineCollector } from "../cli/support.ts";
import { buildHooksd, deliver, startNotifyListener, type NotifyListener } from "./support.ts";

// Building the executable and a deploy over HTTP; the machine is shared.
setDefaultTimeout(60_000);

const WEBHOOK_SECRET = "credential-webhook-secret-5150";
const GIT_AUTH = { username: "deploy", password: "credential-git-token-8086" };

let root: string;
let bin: string;
let server: GitServer;
let work: string;
let credentials: string;

beforeAll(async () => {
  root = await makeTempDir("serve-notify");
  bin = await buildHooksd(root);
  ({ work } = await createRemote(join(root, "remotes"), "site.git"));
  await commitFiles(work, { "index.html": "<h1>one</h1>\n" }, "one");
  await push(work, "main");
  server = await startGitServer({ root: join(root, "remotes"), auth: GIT_AUTH });
  // What systemd makes of LoadCredential=: one file per credential.
  credentials = join(root, "credentials");
  await mkdir(credentials, { mode: 0o700 });
  await writeFile(join(credentials, "webhook-secret"), `${WEBHOOK_SECRET}\n`, { mode: 0o400 });
  await writeFile(join(credentials, "git-credentials"), `${GIT_AUTH.username}:${GIT_AUTH.password}\n`, { mode: 0o400 });
});
afterAll(async () => {
  await server?.stop();
  await removeTempDirs();
});

interface Daemon {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  stdout: LineCollector;
  stderr: LineCollector;
  url: string;
}

/** Starts the compiled hooksd serving a fresh site dir, with a scrubbed environment plus `env`. */
async function startDaemon(site: string, env: Record<string, string>, args: string[] = []): Promise<Daemon> {
  const proc = Bun.spawn(
    [bin, "serve", "--repo", site, "--remote", server.url("site.git"), "--branch", "main", "--listen", "127.0.0.1:0", "--state-dir", join(site, "..", "state"), ...args],
    { env: { PATH: "/usr/bin:/bin", HOME: tmpdir(), ...env }, stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  const stdout = new LineCollector(proc.stdout);
  const stderr = new LineCollector(proc.stderr);
  const listening = await stdout.waitFor((line) => line.includes('"msg":"listening"'), 30_000).catch((err: Error) => {
    proc.kill();
    throw new Error(`${err.message}\nstderr:\n${stderr.lines.join("\n")}`);
  });
  return { proc, stdout, stderr, url: (JSON.parse(listening) as { url: string }).url };
}

async function freshSite(name: string): Promise<string> {
  const site = join(root, name, "site");
  await mkdir(site, { recursive: true });
  return site;
}


const notWatchdog = (messages: { message: string }[]) => messages.map((m) => m.message).filter((m) => m !== "WATCHDOG=1");

describe("the compiled hooksd under a notify socket, with its secrets as credentials", () => {
  let listener: NotifyListener;
  let daemon: Daemon;
  let site: string;

  beforeAll(async () => {
    const socket = join(root, "notify.sock");
    listener = await startNotifyListener(socket);
    site = await freshSite("main");
    daemon = await startDaemon(site, { NOTIFY_SOCKET: socket, WATCHDOG_USEC: "300000", CREDENTIALS_DIRECTORY: credentials });
  });
  afterAll(async () => {
    daemon?.proc.kill("SIGKILL");
    await listener?.stop();
  });

  test("STATUS= and then READY=1 come from the daemon's own PID, and it answers by then", async () => {
    await listener.waitFor((m) => m.message === "READY=1", 30_000);
    const health = await fetch(new URL("/healthz", daemon.url));
    expect(health.status).toBe(200);
    expect(notWatchdog(listener.messages).slice(0, 2)).toEqual(["STATUS=site: nothing deployed", "READY=1"]);
    for (const m of listener.messages) expect(m.pid).toBe(daemon.proc.pid);
  });

  test("a delivery signed with the webhook-secret credential deploys through the git-credentials one, and STATUS= names the commit", async () => {
    const wrong = await deliver(daemon.url, "not-the-secret", "1".repeat(40));
    expect(wrong.status).toBe(401);

    const sha = await git(work, "rev-parse", "HEAD");
    const from = listener.messages.length;
    const answer = await deliver(daemon.url, WEBHOOK_SECRET, sha);
    expect(answer.status).toBe(202);
    const status = await listener.waitFor((m) => m.message.startsWith("STATUS="), 30_000, from);
    expect(status).toEqual({ pid: daemon.proc.pid!, message: `STATUS=site: ${sha.slice(0, 12)}` });
    expect(await readFile(join(site, "index.html"), "utf8")).toBe("<h1>one</h1>\n");
    // Only the deployed commit moved the site: the 401 delivery queued nothing.
    const deploys = daemon.stdout.lines.filter((l) => l.includes('"msg":"deploy started"'));
    expect(deploys.length).toBe(1);
    // The secrets were read from files and appear nowhere in the output.
    const output = [...daemon.stdout.lines, ...daemon.stderr.lines].join("\n");
    expect(output).not.toContain(WEBHOOK_SECRET);
    expect(output).not.toContain(GIT_AUTH.password);
  });

  test("WATCHDOG=1 pings keep arriving from the daemon while WATCHDOG_USEC is set", async () => {
    const from = listener.messages.length;
    await listener.waitFor((m) => m.message === "WATCHDOG=1", 10_000, from);
    const second = await listener.waitFor((m) => m.message === "WATCHDOG=1", 10_000, listener.messages.length);
    expect(second.pid).toBe(daemon.proc.pid!);
  });

  test("SIGHUP is a reload: RELOADING=1 with MONOTONIC_USEC, the status again, then READY=1, and the daemon keeps serving", async () => {
    const from = listener.messages.length;
    daemon.proc.kill("SIGHUP");
    await listener.waitFor((m) => m.message === "READY=1", 10_000, from);
    const sent = notWatchdog(listener.messages.slice(from));
    expect(sent.length).toBe(3);
    expect(sent[0]).toMatch(/^RELOADING=1\nMONOTONIC_USEC=\d+$/);
    expect(sent.slice(1)).toEqual([`STATUS=site: ${(await git(work, "rev-parse", "HEAD")).slice(0, 12)}`, "READY=1"]);
    // Started with flags, there is no config file to reread; it says so and carries on.
    await daemon.stdout.waitFor((line) => line.includes("SIGHUP ignored: there is no --config file to reload"), 10_000);
    expect((await fetch(new URL("/healthz", daemon.url))).status).toBe(200);
    expect(daemon.proc.exitCode).toBeNull();
  });

  test("SIGTERM sends STOPPING=1 and the daemon exits 0", async () => {
    const from = listener.messages.length;
    daemon.proc.kill("SIGTERM");
    expect(await daemon.proc.exited).toBe(0);
    await Bun.sleep(100);
    expect(notWatchdog(listener.messages.slice(from))).toEqual(["STOPPING=1"]);
  });
});

test("an abstract NOTIFY_SOCKET gets READY=1, and a WATCHDOG_PID naming another process stops the pings", async () => {
  const socket = `@hooksd-serve-test-${process.pid}-${Date.now()}`;
  const listener = await startNotifyListener(socket);
  const daemon = await startDaemon(await freshSite("abstract"), {
    NOTIFY_SOCKET: socket,
    WATCHDOG_USEC: "100000",
    WATCHDOG_PID: "1",
    CREDENTIALS_DIRECTORY: credentials,
  });
  try {
    await listener.waitFor((m) => m.message === "READY=1", 30_000);
    await Bun.sleep(500);
    daemon.proc.kill("SIGTERM");
    expect(await daemon.proc.exited).toBe(0);
    await listener.waitFor((m) => m.message === "STOPPING=1", 10_000);
    expect(listener.messages.map((m) => m.message)).toEqual(["STATUS=site: nothing deployed", "READY=1", "STOPPING=1"]);
  } finally {
    daemon.proc.kill("SIGKILL");
    await listener.stop();
  }
});

test("--secret-file wins over the webhook-secret credential", async () => {
  const secretFile = join(root, "flag-secret");
  await writeFile(secretFile, "flag-secret-value\n", { mode: 0o600 });
  const daemon = await startDaemon(await freshSite("flag-wins"), { CREDENTIALS_DIRECTORY: credentials }, ["--secret-file", secretFile]);
  try {
    expect((await deliver(daemon.url, WEBHOOK_SECRET, "1".repeat(40))).status).toBe(401);
    expect((await deliver(daemon.url, "flag-secret-value", "1".repeat(40))).status).toBe(202);
  } finally {
    daemon.proc.kill("SIGKILL");
  }
});

describe("credential errors are usage errors: exit 2, nothing created", () => {
  async function runToEnd(credentialFiles: Record<string, string>): Promise<{ code: number; stderr: string; created: string[] }> {
    const dir = join(root, `creds-${Object.keys(credentialFiles).join("-") || "none"}-${Date.now()}`);
    const creds = join(dir, "credentials");
    await mkdir(creds, { recursive: true });
    for (const [name, content] of Object.entries(credentialFiles)) await writeFile(join(creds, name), content);
    const proc = Bun.spawn([bin, "serve", "--repo", join(dir, "site"), "--remote", server.url("site.git"), "--branch", "main", "--state-dir", join(dir, "state")], {
      env: { PATH: "/usr/bin:/bin", HOME: tmpdir(), CREDENTIALS_DIRECTORY: creds },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    // A daemon that wrongly starts serving is stopped, and then fails the exit-code check.
    const stop = setTimeout(() => proc.kill(), 20_000);
    const [code, stderr] = await Promise.all([proc.exited, proc.stderr.text()]);
    clearTimeout(stop);
    return { code, stderr, created: (await readdir(dir)).sort() };
  }

  test("an empty webhook-secret credential names the credential", async () => {
    const result = await runToEnd({ "webhook-secret": "" });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("credential webhook-secret");
    expect(result.created).toEqual(["credentials"]);
  });

  test("no secret anywhere mentions LoadCredential=webhook-secret as a way to give it", async () => {
    const result = await runToEnd({});
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("LoadCredential=webhook-secret:FILE");
    expect(result.created).toEqual(["credentials"]);
  });

  test("a git-credentials credential without 'username:token' names it", async () => {
    const result = await runToEnd({ "webhook-secret": "s\n", "git-credentials": "just-a-token\n" });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("git-credentials");
    expect(result.stderr).toContain("username:token");
    expect(result.stderr).not.toContain("just-a-token");
    expect(result.created).toEqual(["credentials"]);
  });
});
