import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { copyFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { git, makeTempDir, removeTempDirs } from "../helpers/git-fixture.ts";
import { buildBinary, createDaemonSite, createGate, gitlabPush, runHooksd, siteArgs, startDaemon, type DaemonSite } from "./support.ts";

setDefaultTimeout(60_000);

const gate = createGate();
let site: DaemonSite;
let pki: string;
/** The compiled executable: TLS comes from the Bun runtime it carries. */
let hooksd: string[];

async function run(cmd: string[], cwd: string): Promise<string> {
  const proc = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}: ${err}`);
  return out;
}

/** A leaf for 127.0.0.1 and localhost, signed by the test CA, with the given serial. */
async function issueLeaf(name: string, serial: number): Promise<void> {
  await run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", "/CN=localhost"], pki);
  await writeFile(join(pki, `${name}.ext`), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  await run(["openssl", "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", String(serial), "-days", "2", "-out", `${name}.pem`, "-extfile", `${name}.ext`], pki);
}

/** Installs a leaf where the daemon reads its certificate, as a renewal tool would. */
async function install(name: string): Promise<void> {
  await copyFile(join(pki, `${name}.pem`), join(pki, "live.pem"));
  await copyFile(join(pki, `${name}.key`), join(pki, "live.key"));
}

/** What curl, trusting only the test CA, sees: the answer and the server certificate's serial. */
async function curl(url: string, extra: string[] = []): Promise<{ status: number; serial: string; body: string }> {
  const marker = "\n--curl-write-out--\n";
  const out = await run(["curl", "-sS", "--cacert", join(pki, "ca.pem"), "-w", `${marker}%{http_code}\n%{certs}`, ...extra, url], pki);
  const [body = "", written = ""] = out.split(marker);
  const [status = "", ...certs] = written.split("\n");
  const serial = /Serial Number:\s*([0-9a-fA-F:]+)/.exec(certs.join("\n"))?.[1] ?? "none";
  // curl prints the serial as hex, possibly with colons and leading zeros.
  return { status: Number(status), serial: serial.replace(/:/g, "").replace(/^0+/, "").toLowerCase(), body };
}

beforeAll(async () => {
  hooksd = await buildBinary();
  site = await createDaemonSite("tls", gate);
  pki = await makeTempDir("pki");
  await run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=hooksd test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"], pki);
  await issueLeaf("first", 0x1001);
  await issueLeaf("renewed", 0x1002);
  await install("first");
});

afterAll(async () => {
  gate.release();
  await site.server.stop();
  await removeTempDirs();
});

describe("serve --tls-cert/--tls-key", () => {
  test("serves HTTPS that curl verifies against the CA, and picks up a renewed certificate on SIGHUP while a deploy runs", async () => {
    const daemon = await startDaemon(hooksd, [...siteArgs(site), "--tls-cert", join(pki, "live.pem"), "--tls-key", join(pki, "live.key")]);
    try {
      expect(daemon.url).toStartWith("https://127.0.0.1:");
      const before = await curl(`${daemon.url}healthz`);
      expect(before.status).toBe(200);
      expect(before.serial).toBe("1001");

      // A delivery accepted just before the renewal, its fetch held by the git server.
      gate.hold();
      const push = await gitlabPush(site.base, site.next);
      const headerArgs = Object.entries(push.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
      const accepted = await curl(daemon.url, ["-X", "POST", ...headerArgs, "--data-binary", push.body]);
      expect(accepted.status).toBe(202);
      const deployId = (JSON.parse(accepted.body) as { deploy: string }).deploy;
      await gate.reached;

      await install("renewed");
      daemon.proc.kill("SIGHUP");
      await daemon.waitForLog((l) => l.msg === "certificate reloaded");
      const after = await curl(`${daemon.url}healthz`);
      expect(after.status).toBe(200);
      expect(after.serial).toBe("1002");

      // The deploy that was running during the swap completes.
      gate.release();
      const done = await daemon.waitForLog((l) => l.deploy === deployId && (l.msg === "deploy succeeded" || l.msg === "deploy failed"));
      expect(done.msg).toBe("deploy succeeded");
      expect(await git(site.repo, "rev-parse", "HEAD")).toBe(site.next);

      // A broken renewal is refused; the certificate in use keeps serving.
      await writeFile(join(pki, "live.pem"), "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n");
      daemon.proc.kill("SIGHUP");
      const refused = await daemon.waitForLog((l) => l.msg === "certificate not reloaded; the current one keeps serving");
      expect(refused.level).toBe("error");
      const still = await curl(`${daemon.url}healthz`);
      expect(still.status).toBe(200);
      expect(still.serial).toBe("1002");
      // And a key that is not the certificate's is refused too.
      await copyFile(join(pki, "first.pem"), join(pki, "live.pem"));
      await copyFile(join(pki, "renewed.key"), join(pki, "live.key"));
      daemon.proc.kill("SIGHUP");
      await daemon.waitForLog((l) => String(l.error ?? "").includes("KEY_VALUES_MISMATCH"));
      expect((await curl(`${daemon.url}healthz`)).serial).toBe("1002");

      daemon.proc.kill("SIGTERM");
      expect(await daemon.exited).toBe(0);
      expect(daemon.stderr()).toBe("");
    } finally {
      gate.release();
      daemon.proc.kill("SIGKILL");
    }
  });

  test("a config file's tls_cert and tls_key serve HTTPS, and SIGHUP reloads both the config and the certificate", async () => {
    await install("first");
    const stateDir = join(site.tmp, "state-config");
    const configFile = join(site.tmp, "hooksd.toml");
    const toml = (branch: string) => [
      `listen = "127.0.0.1:0"`,
      `state_dir = "${stateDir}"`,
      `tls_cert = "${join(pki, "live.pem")}"`,
      `tls_key = "${join(pki, "live.key")}"`,
      `[[targets]]`,
      `name = "site"`,
      `repo = "${site.repo}"`,
      `remote = "${site.url}"`,
      `branch = "${branch}"`,
      `secret_files = ["${site.secretFile}"]`,
    ].join("\n") + "\n";
    await writeFile(configFile, toml("main"));
    const daemon = await startDaemon(hooksd, ["--config", configFile]);
    try {
      expect(daemon.url).toStartWith("https://127.0.0.1:");
      expect((await curl(`${daemon.url}healthz`)).serial).toBe("1001");

      await writeFile(configFile, toml("*"));
      await install("renewed");
      daemon.proc.kill("SIGHUP");
      const reloaded = await daemon.waitForLog((l) => l.msg === "config reloaded");
      expect((reloaded.targets as Array<{ refs: string }>)[0]?.refs).toBe("refs/heads/*");
      await daemon.waitForLog((l) => l.msg === "certificate reloaded");
      expect((await curl(`${daemon.url}healthz`)).serial).toBe("1002");
      daemon.proc.kill("SIGTERM");
      expect(await daemon.exited).toBe(0);
    } finally {
      daemon.proc.kill("SIGKILL");
    }

    // A certificate without its key is a problem of the file, named by key.
    await writeFile(configFile, toml("main").replace(/^tls_key = .*\n/m, ""));
    const checked = await runHooksd(hooksd, ["check", "--config", configFile]);
    expect(checked.exitCode).toBe(2);
    expect(checked.stderr).toContain("tls_key: is required with tls_cert");
  });

  test("refuses to start, with exit 2 naming the flags, when the key is not the certificate's", async () => {
    const stateDir = join(site.tmp, "state-mismatch");
    const result = await runHooksd(hooksd, ["serve", ...siteArgs(site), "--state-dir", stateDir, "--listen", "127.0.0.1:0",
      "--tls-cert", join(pki, "first.pem"), "--tls-key", join(pki, "renewed.key")]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("--tls-cert/--tls-key");
    expect(result.stderr).toContain("KEY_VALUES_MISMATCH");
    expect(result.stdout).toBe("");
    expect(await readdir(stateDir).catch(() => "missing")).toBe("missing");
  });

  test("refuses --tls-cert without --tls-key, and an unreadable certificate file, with exit 2", async () => {
    const stateDir = join(site.tmp, "state-half");
    const head = await git(site.repo, "rev-parse", "HEAD");
    const base = ["serve", ...siteArgs(site), "--state-dir", stateDir, "--listen", "127.0.0.1:0"];
    const half = await runHooksd(hooksd, [...base, "--tls-cert", join(pki, "first.pem")]);
    expect(half.exitCode).toBe(2);
    expect(half.stderr).toContain("--tls-cert and --tls-key go together");
    const missing = await runHooksd(hooksd, [...base, "--tls-cert", join(pki, "nope.pem"), "--tls-key", join(pki, "first.key")]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain(`--tls-cert: cannot read ${join(pki, "nope.pem")} (ENOENT)`);
    expect(await readdir(stateDir).catch(() => "missing")).toBe("missing");
    expect(await git(site.repo, "rev-parse", "HEAD")).toBe(head);
  });
});
