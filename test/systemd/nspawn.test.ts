/**
 * hooksd under a real systemd: a Debian bookworm container (systemd-nspawn,
 * systemd as PID 1) gets the compiled executable, the unit written by
 * `hooksd install-unit`, the sysusers/tmpfiles snippets and the credentials,
 * and runs the service with its full sandbox. A git server on the host's
 * loopback serves the site; a delivery from the host deploys it.
 *
 * Needs root (nspawn) and, the first time, about a minute to build the image
 * (test/systemd/nspawn-image.sh, cached under /var/cache/hooksd-nspawn).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmod, copyFile, mkdir, readFile, readlink, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { commitFiles, createRemote, makeTempDir, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { startGitServer, type GitServer } from "../helpers/git-server.ts";
import { bootContainer, nspawnUnavailable, type Container } from "./nspawn-container.ts";
import { buildHooksd, deliver, REPO_ROOT } from "./support.ts";

// The first run builds the image (debootstrap, ~70 s, longer on a busy machine).
setDefaultTimeout(120_000);

const unavailable = nspawnUnavailable();
if (unavailable) console.log(`skipping the systemd-nspawn test: ${unavailable}`);

const WEBHOOK_SECRET = "nspawn-webhook-secret-1187";
const GIT_AUTH = { username: "deploy", password: "nspawn-git-token-6502" };
const SITE = "/srv/www/site";

describe.skipIf(unavailable !== undefined)("hooksd.service in a systemd-nspawn container", () => {
  let container: Container;
  let server: GitServer;
  let work: string;
  let port: number;
  let hooks = false;
  const timings: Record<string, number> = {};
  const timed = async <T>(label: string, work: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    try {
      return await work();
    } finally {
      timings[label] = Math.round(performance.now() - start);
    }
  };

  beforeAll(async () => {
    const root = await makeTempDir("nspawn");
    const image = await timed("image", async () => {
      const proc = Bun.spawn(["bash", join(import.meta.dir, "nspawn-image.sh")], { stdout: "pipe", stderr: "inherit" });
      const [out, code] = await Promise.all([proc.stdout.text(), proc.exited]);
      if (code !== 0) throw new Error(`nspawn-image.sh exited ${code}`);
      return out.trim();
    }).catch((err) => {
      throw new Error(`cannot build the container image: ${(err as Error).message}`);
    });
    const bin = await buildHooksd(root);

    ({ work } = await createRemote(join(root, "remotes"), "site.git"));
    await commitFiles(work, { "index.html": "<h1>one</h1>\n" }, "one");
    await push(work, "main");
    server = await startGitServer({ root: join(root, "remotes"), auth: GIT_AUTH });
    port = await freePort();

    container = await timed("boot", () => bootContainer(image));
    // The git server on the host's loopback is reachable only if nspawn left the network namespace shared.
    const [ours, theirs] = await Promise.all([readlink("/proc/self/ns/net"), readlink(`/proc/${container.pid}/ns/net`)]);
    if (ours !== theirs) throw new Error("the container has its own network namespace; the test needs nspawn without --private-network");

    await timed("install", async () => {
      await copyFile(bin, container.path("/usr/local/bin/hooksd"));
      await chmod(container.path("/usr/local/bin/hooksd"), 0o755);
      for (const kind of ["sysusers.d", "tmpfiles.d"]) {
        await mkdir(container.path(`/etc/${kind}`), { recursive: true });
        await copyFile(join(REPO_ROOT, "systemd", kind, "hooksd.conf"), container.path(`/etc/${kind}/hooksd.conf`));
      }
      await container.run(["systemd-sysusers", "hooksd.conf"]);
      await container.run(["systemd-tmpfiles", "--create", "hooksd.conf"]);
      await writeFile(container.path("/etc/hooksd/webhook-secret"), `${WEBHOOK_SECRET}\n`, { mode: 0o600 });
      await writeFile(container.path("/etc/hooksd/git-credentials"), `${GIT_AUTH.username}:${GIT_AUTH.password}\n`, { mode: 0o600 });

      // Hooks are another feature (--hooks-dir); test them inside the sandbox when this build has them.
      hooks = (await container.run(["/usr/local/bin/hooksd", "--help"])).stdout.includes("--hooks-dir");
      const hookArgs: string[] = [];
      if (hooks) {
        await mkdir(container.path("/etc/hooksd/hooks"));
        // A build step writes into the site; nothing outside ReadWritePaths= is writable.
        await writeFile(
          container.path("/etc/hooksd/hooks/post-deploy"),
          `#!/bin/sh\necho "$HOOKSD_NEW_COMMIT $(id -un)" > ${SITE}/post-deploy-ran\nif touch /usr/local/hook-escaped 2>/dev/null; then echo escaped >> ${SITE}/post-deploy-ran; fi\n`,
          { mode: 0o755 },
        );
        hookArgs.push("--hooks-dir", "/etc/hooksd/hooks");
      }
      const installed = await container.run([
        "/usr/local/bin/hooksd", "install-unit",
        "--repo", SITE, "--remote", server.url("site.git"), "--branch", "main",
        "--listen", `127.0.0.1:${port}`, "--credentials-file", "/etc/hooksd/git-credentials", ...hookArgs,
      ]);
      expect(installed.stdout).toContain("wrote /etc/systemd/system/hooksd.service");
      // A short watchdog, so that the test sees systemd take the pings (the unit ships 60 s).
      await mkdir(container.path("/etc/systemd/system/hooksd.service.d"), { recursive: true });
      await writeFile(container.path("/etc/systemd/system/hooksd.service.d/test-watchdog.conf"), "[Service]\nWatchdogSec=2s\n");
      await container.run(["systemctl", "daemon-reload"]);
    });
  });

  afterAll(async () => {
    if (container) await timed("power-off", () => container.powerOff());
    await server?.stop();
    await removeTempDirs();
    console.log(`nspawn test timings (ms): ${JSON.stringify(timings)}`);
  });

  const url = () => `http://127.0.0.1:${port}/`;
  const statusText = async () => (await container.show("hooksd", "StatusText")).StatusText ?? "";
  const journal = async () => (await container.run(["journalctl", "-u", "hooksd", "-o", "cat", "--no-pager"])).stdout;
  // journald stores a line a moment after the process writes it.
  const journalShows = (text: string) => waitFor(async () => (await journal()).includes(text), 10_000, journal);

  test("systemctl start returns once hooksd reports READY=1, running as hooksd with its sandbox", async () => {
    await timed("start", () => container.run(["systemctl", "start", "hooksd"]));
    const props = await container.show("hooksd", "ActiveState", "SubState", "MainPID", "StatusText", "NRestarts", "Type", "NotifyAccess");
    expect(props).toMatchObject({ ActiveState: "active", SubState: "running", StatusText: "site: nothing deployed", NRestarts: "0", Type: "notify", NotifyAccess: "main" });
    const mainPid = props.MainPID!;
    // The process as systemd runs it: unprivileged, no capabilities, no new privileges, seccomp on.
    const procStatus = (await container.run(["cat", `/proc/${mainPid}/status`])).stdout;
    expect(procStatus).toMatch(/^CapEff:\s+0+$/m);
    expect(procStatus).toMatch(/^CapBnd:\s+0+$/m);
    expect(procStatus).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(procStatus).toMatch(/^Seccomp:\s+2$/m);
    expect((await container.run(["stat", "-c", "%U", `/proc/${mainPid}`])).stdout.trim()).toBe("hooksd");
    expect((await fetch(new URL("/healthz", url()))).status).toBe(200);
  });

  test("a delivery from the host deploys inside the sandbox, and systemctl status shows the deployed commit", async () => {
    const sha = await commitFiles(work, { "index.html": "<h1>two</h1>\n", "css/site.css": "body{}\n" }, "two");
    await push(work, "main");
    expect((await deliver(url(), "wrong-secret", sha)).status).toBe(401);
    const answer = await timed("deliver", () => deliver(url(), WEBHOOK_SECRET, sha));
    expect(answer.status).toBe(202);

    await timed("deploy", () => waitFor(async () => (await statusText()).includes(sha.slice(0, 12)), 30_000, async () => `status: ${await statusText()}\n${await journal()}`));
    expect(await statusText()).toBe(`site: ${sha.slice(0, 12)}`);
    const status = (await container.run(["systemctl", "status", "hooksd", "--no-pager"], { check: false })).stdout;
    expect(status).toContain(`Status: "site: ${sha.slice(0, 12)}"`);

    expect(await readFile(container.path(`${SITE}/index.html`), "utf8")).toBe("<h1>two</h1>\n");
    expect(await readFile(container.path(`${SITE}/css/site.css`), "utf8")).toBe("body{}\n");
    // Written by the service's user, with the unit's UMask= (readable by the web server).
    const owner = (await container.run(["stat", "-c", "%U %a", `${SITE}/index.html`])).stdout.trim();
    expect(owner).toBe("hooksd 644");
    if (hooks) {
      await waitFor(async () => (await stat(container.path(`${SITE}/post-deploy-ran`)).catch(() => undefined)) !== undefined, 30_000, journal);
      expect(await readFile(container.path(`${SITE}/post-deploy-ran`), "utf8")).toBe(`${sha} hooksd\n`);
    } else {
      console.log("hooks not checked in the container: this build has no --hooks-dir yet");
    }
  });

  test("systemd takes the watchdog pings from hooksd's own PID (NotifyAccess=main)", async () => {
    const before = await container.show("hooksd", "WatchdogTimestampMonotonic", "MainPID", "WatchdogUSec");
    expect(before.WatchdogUSec).toBe("2s");
    await waitFor(async () => (await container.show("hooksd", "WatchdogTimestampMonotonic")).WatchdogTimestampMonotonic !== before.WatchdogTimestampMonotonic, 10_000, journal);
    // Two watchdog periods later it is still the same process: no watchdog kill.
    await Bun.sleep(4_000);
    expect(await container.show("hooksd", "MainPID", "ActiveState", "NRestarts")).toEqual({ MainPID: before.MainPID!, ActiveState: "active", NRestarts: "0" });
  });

  test("systemctl reload sends SIGHUP: the same process takes it (with flags there is no file to reread) and keeps serving", async () => {
    const { MainPID } = await container.show("hooksd", "MainPID");
    await timed("reload", () => container.run(["systemctl", "reload", "hooksd"]));
    expect(await container.show("hooksd", "MainPID", "ActiveState")).toEqual({ MainPID: MainPID!, ActiveState: "active" });
    await journalShows("SIGHUP ignored: there is no --config file to reload");
    expect((await fetch(new URL("/healthz", url()))).status).toBe(200);
  });

  test("systemctl restart brings up a new process that reports the deployed commit again", async () => {
    const before = await container.show("hooksd", "MainPID", "StatusText");
    await timed("restart", () => container.run(["systemctl", "restart", "hooksd"]));
    const after = await container.show("hooksd", "MainPID", "StatusText", "ActiveState");
    expect(after.MainPID).not.toBe(before.MainPID);
    expect(after).toMatchObject({ ActiveState: "active", StatusText: before.StatusText });
    expect((await fetch(new URL("/healthz", url()))).status).toBe(200);
  });

  test("systemctl stop ends it cleanly (SIGTERM, exit 0)", async () => {
    await timed("stop", () => container.run(["systemctl", "stop", "hooksd"]));
    expect(await container.show("hooksd", "ActiveState", "Result", "ExecMainStatus")).toEqual({ ActiveState: "inactive", Result: "success", ExecMainStatus: "0" });
    expect(await fetch(new URL("/healthz", url())).then(() => "answered", () => "refused")).toBe("refused");
  });

  test("the journal holds hooksd's JSON log lines, and no secret", async () => {
    await journalShows('"msg":"stopping"');
    const text = await journal();
    const lines = text.split("\n").filter((line) => line.startsWith("{"));
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const messages = records.map((r) => r.msg);
    for (const msg of ["listening", "deploy started", "deploy succeeded", "SIGHUP ignored: there is no --config file to reload", "stopping"]) expect(messages).toContain(msg);
    expect(records.filter((r) => r.msg === "request" && r.method === "POST").map((r) => r.status)).toEqual([401, 202]);
    expect(records.find((r) => r.msg === "listening")).toMatchObject({ authenticated: true, repo: SITE });
    expect(text).not.toContain(WEBHOOK_SECRET);
    expect(text).not.toContain(GIT_AUTH.password);
  });

  test("with --config naming its secrets under /run/credentials, it deploys, and systemctl reload rereads the file", async () => {
    const credentialsDir = "/run/credentials/hooksd.service";
    const config = (name: string) => `listen = "127.0.0.1:${port}"
[[targets]]
name = "${name}"
repo = "${SITE}"
remote = "${server.url("site.git")}"
branch = "main"
secret_files = ["${credentialsDir}/webhook-secret"]
credentials_file = "${credentialsDir}/git-credentials"
`;
    await writeFile(container.path("/etc/hooksd/hooksd.toml"), config("site"), { mode: 0o644 });
    await container.run(["/usr/local/bin/hooksd", "install-unit", "--config", "/etc/hooksd/hooksd.toml"]);
    // With a config file the unit fills in no credential: the operator adds the ones the file names.
    await writeFile(
      container.path("/etc/systemd/system/hooksd.service.d/credentials.conf"),
      "[Service]\nLoadCredential=webhook-secret:/etc/hooksd/webhook-secret\nLoadCredential=git-credentials:/etc/hooksd/git-credentials\n",
    );
    await container.run(["systemctl", "daemon-reload"]);
    await container.run(["systemctl", "start", "hooksd"]);
    const deployed = (await statusText()).replace(/^site: /, "");
    expect(deployed).toMatch(/^[0-9a-f]{12}$/);

    await writeFile(container.path("/etc/hooksd/hooksd.toml"), config("www"), { mode: 0o644 });
    const { MainPID } = await container.show("hooksd", "MainPID");
    await timed("reload-config", () => container.run(["systemctl", "reload", "hooksd"]));
    // systemd 252 may finish the reload job when ExecReload's kill exits, before hooksd's
    // RELOADING=1 arrives (Type=notify-reload, systemd 253, closes that gap): wait for the result.
    await waitFor(async () => (await statusText()) === `www: ${deployed}`, 10_000, journal);
    expect((await container.show("hooksd", "MainPID")).MainPID).toBe(MainPID!);
    await journalShows('"msg":"config reloaded"');

    const sha = await commitFiles(work, { "index.html": "<h1>three</h1>\n" }, "three");
    await push(work, "main");
    expect((await deliver(`${url()}hooks/www`, WEBHOOK_SECRET, sha)).status).toBe(202);
    await waitFor(async () => (await statusText()) === `www: ${sha.slice(0, 12)}`, 30_000, async () => `status: ${await statusText()}\n${await journal()}`);
    expect(await readFile(container.path(`${SITE}/index.html`), "utf8")).toBe("<h1>three</h1>\n");
    await container.run(["systemctl", "stop", "hooksd"]);
  });
});


async function waitFor(done: () => Promise<boolean>, timeoutMs: number, explain: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms\n${await explain()}`);
    await Bun.sleep(100);
  }
}

async function freePort(): Promise<number> {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = probe.port!;
  await probe.stop(true);
  return port;
}

