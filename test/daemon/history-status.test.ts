import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import type { DeployRecord } from "../../src/state/history.ts";
import type { TargetStatus } from "../../src/state/target-status.ts";
import { git, makeTempDir, removeTempDirs } from "../helpers/git-fixture.ts";
import { createDaemonSite, FROM_SOURCE, gitlabPush, runHooksd, siteArgs, startDaemon, type Daemon, type DaemonSite } from "./support.ts";

setDefaultTimeout(60_000);

let site: DaemonSite;
const daemons: Daemon[] = [];

beforeAll(async () => {
  site = await createDaemonSite("history");
});
afterAll(async () => {
  for (const d of daemons) d.proc.kill("SIGKILL");
  await site.server.stop();
  await removeTempDirs();
});

async function json<T>(args: string[]): Promise<T> {
  const result = await runHooksd(FROM_SOURCE, args);
  expect(result.stderr).toBe("");
  expect(result.exitCode).toBe(0);
  return JSON.parse(result.stdout) as T;
}

async function resetCheckout(): Promise<void> {
  await git(site.repo, "checkout", "--quiet", "-B", "main", site.base);
}

describe("hooksd history and hooksd status", () => {
  test("read what `hooksd deploy` recorded in the state dir, with no daemon running", async () => {
    await resetCheckout();
    const stateDir = join(await makeTempDir("state"), "hooksd");
    const deployed = await runHooksd(FROM_SOURCE, ["deploy", "--repo", site.repo, "--remote", site.url, "--state-dir", stateDir]);
    expect(deployed.exitCode).toBe(0);

    const records = await json<DeployRecord[]>(["history", "--json", "--state-dir", stateDir]);
    expect(records).toHaveLength(1);
    const [record] = records;
    expect(record).toMatchObject({ target: "site", ref: "refs/heads/main", state: "succeeded", previous: site.base, commit: site.next });
    expect(Object.keys(record!.timings).sort()).toEqual(["checkout", "fetch"]);
    expect(Date.parse(record!.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(record!.startedAt!));

    const table = await runHooksd(FROM_SOURCE, ["history", "--state-dir", stateDir]);
    expect(table.exitCode).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID +TARGET +STATE +REF +FROM +TO +QUEUED +TOOK +ERROR$/);
    expect(lines[1]).toMatch(new RegExp(`^${record!.id} +site +succeeded +refs/heads/main +${site.base.slice(0, 12)} +${site.next.slice(0, 12)} `));
    expect(lines).toHaveLength(2);

    const status = await json<{ targets: TargetStatus[] }>(["status", "--json", "--state-dir", stateDir]);
    // Exactly these keys: JSON drops the undefined error.
    expect(status.targets as unknown[]).toEqual([
      {
        name: "site",
        repo: site.repo,
        refs: "refs/heads/main",
        deployedCommit: site.next,
        lastDeploy: { id: record!.id, state: "succeeded", ref: "refs/heads/main", commit: site.next, finishedAt: record!.finishedAt! },
      },
    ]);
    const statusTable = await runHooksd(FROM_SOURCE, ["status", "--state-dir", stateDir]);
    expect(statusTable.stdout.split("\n")[0]).toMatch(/^TARGET +DEPLOYED +LAST DEPLOY +STATE +FINISHED +REPO +ERROR$/);
    expect(statusTable.stdout.split("\n")[1]).toMatch(new RegExp(`^site +${site.next.slice(0, 12)} +${record!.id} +succeeded `));

    // status reads the checkout itself, not only the history: a change by hand shows.
    await resetCheckout();
    expect((await json<{ targets: TargetStatus[] }>(["status", "--json", "--state-dir", stateDir])).targets[0]?.deployedCommit).toBe(site.base);
  });

  test("history filters with --target and --limit, newest first, and refuses a bad --limit with exit 2", async () => {
    await resetCheckout();
    const stateDir = await makeTempDir("state-limit");
    for (let i = 0; i < 3; i++) expect((await runHooksd(FROM_SOURCE, ["deploy", "--repo", site.repo, "--remote", site.url, "--state-dir", stateDir])).exitCode).toBe(0);
    const all = await json<DeployRecord[]>(["history", "--json", "--state-dir", stateDir]);
    expect(all.map((r) => r.id)).toEqual(all.map((r) => r.id).sort().reverse());
    expect(all.map((r) => r.previous)).toEqual([site.next, site.next, site.base]);
    expect((await json<DeployRecord[]>(["history", "--json", "--limit", "2", "--state-dir", stateDir])).map((r) => r.id)).toEqual(all.slice(0, 2).map((r) => r.id));
    expect(await json<DeployRecord[]>(["history", "--json", "--target", "other", "--state-dir", stateDir])).toEqual([]);
    const none = await runHooksd(FROM_SOURCE, ["history", "--target", "other", "--state-dir", stateDir]);
    expect(none.stdout).toBe(`no deploys recorded in ${stateDir} for target other\n`);

    for (const [args, message] of [
      [["--limit", "0"], "--limit: '0' is not a whole number of at least 1"],
      [["--limit", "ten"], "--limit: 'ten' is not a whole number of at least 1"],
      [["--limit"], "--limit needs a value"],
      [["--repo", site.repo], "unknown flag --repo"],
    ] as const) {
      const bad = await runHooksd(FROM_SOURCE, ["history", ...args, "--state-dir", stateDir]);
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr).toContain(message);
      expect(bad.stdout).toBe("");
    }
  });

  test("an empty state dir answers without creating anything, and status --repo names a checkout directly", async () => {
    await resetCheckout();
    const stateDir = join(await makeTempDir("state-empty"), "never");
    const history = await runHooksd(FROM_SOURCE, ["history", "--state-dir", stateDir]);
    expect(history).toEqual({ exitCode: 0, stdout: `no deploys recorded in ${stateDir}\n`, stderr: "" });
    const status = await runHooksd(FROM_SOURCE, ["status", "--state-dir", stateDir]);
    expect(status.exitCode).toBe(0);
    expect(status.stdout).toBe(`no targets recorded in ${stateDir} (start 'hooksd serve' there, or pass --repo DIR)\n`);
    const direct = await json<{ targets: TargetStatus[] }>(["status", "--json", "--repo", site.repo, "--state-dir", stateDir]);
    expect(direct.targets as unknown[]).toEqual([{ name: "site", repo: site.repo, refs: "-", deployedCommit: site.base }]);
    expect(await readdir(stateDir).catch(() => "missing")).toBe("missing");
  });

  test("a state file that is not a database is exit 2 naming --state-dir, and is left as it was", async () => {
    const stateDir = await makeTempDir("state-corrupt");
    await writeFile(join(stateDir, "hooksd.sqlite"), "not a database\n");
    for (const command of ["history", "status"]) {
      const result = await runHooksd(FROM_SOURCE, [command, "--state-dir", stateDir]);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(`--state-dir: cannot open ${join(stateDir, "hooksd.sqlite")} (file is not a database)`);
      expect(result.stdout).toBe("");
    }
    expect(await Bun.file(join(stateDir, "hooksd.sqlite")).text()).toBe("not a database\n");
  });

  test("show a running daemon's deploys from another process, and GET /deploys/:id serves the same record", async () => {
    await resetCheckout();
    const stateDir = await makeTempDir("state-live");
    const daemon = await startDaemon(FROM_SOURCE, [...siteArgs(site), "--state-dir", stateDir]);
    daemons.push(daemon);
    const { headers, body } = await gitlabPush(site.base, site.next);
    const { deploy } = (await (await fetch(daemon.url, { method: "POST", headers, body })).json()) as { deploy: string };
    await daemon.waitForLog((l) => l.deploy === deploy && l.msg === "deploy succeeded");

    const [fromCli] = await json<DeployRecord[]>(["history", "--json", "--state-dir", stateDir]);
    expect(fromCli).toMatchObject({ id: deploy, provider: "gitlab", deliveryId: headers["Idempotency-Key"]!, state: "succeeded", commit: site.next });
    const fromHttp = await fetch(`${daemon.url}deploys/${deploy}`);
    expect(fromHttp.status).toBe(200);
    expect(await fromHttp.json()).toEqual(fromCli!);
    const status = await json<{ targets: TargetStatus[] }>(["status", "--json", "--state-dir", stateDir]);
    expect(status.targets[0]).toMatchObject({ name: "site", deployedCommit: site.next, lastDeploy: { id: deploy, state: "succeeded" } });
    expect(await (await fetch(`${daemon.url}status`)).json()).toEqual(status);

    daemon.proc.kill("SIGTERM");
    expect(await daemon.exited).toBe(0);
  });
});

/** This machine's first non-loopback IPv4 address, to reach a daemon as a remote client would. */
function outsideAddress(): string | undefined {
  return Object.values(networkInterfaces()).flat().find((i) => i && i.family === "IPv4" && !i.internal)?.address;
}

describe("the admin endpoints of a real daemon", () => {
  const address = outsideAddress();
  if (!address) console.log("skipped: this machine has no non-loopback IPv4 address to connect from");

  test.skipIf(!address)("refuse a non-loopback peer without the admin token, from --admin-token-file or the admin-token credential", async () => {
    const dir = await makeTempDir("admin-token");
    const tokenFile = join(dir, "token");
    await writeFile(tokenFile, "file-token-8fQ2\n", { mode: 0o600 });
    const credentials = join(dir, "credentials");
    await mkdir(credentials);
    await writeFile(join(credentials, "admin-token"), "credential-token-Vd7x\n", { mode: 0o600 });

    const open = await startDaemon(FROM_SOURCE, [...siteArgs(site), "--state-dir", join(dir, "s1"), "--listen", "0.0.0.0:0"]);
    const withFile = await startDaemon(FROM_SOURCE, [...siteArgs(site), "--state-dir", join(dir, "s2"), "--listen", "0.0.0.0:0", "--admin-token-file", tokenFile]);
    const withCredential = await startDaemon(FROM_SOURCE, [...siteArgs(site), "--state-dir", join(dir, "s3"), "--listen", "0.0.0.0:0"], { CREDENTIALS_DIRECTORY: credentials });
    daemons.push(open, withFile, withCredential);
    const get = (d: Daemon, host: string, token?: string) =>
      fetch(`http://${host}:${d.port}/metrics`, token ? { headers: { Authorization: `Bearer ${token}` } } : {}).then((r) => r.status);

    expect(await get(open, address!)).toBe(403);
    expect(await get(open, "127.0.0.1")).toBe(200);
    expect(await fetch(`http://${address}:${open.port}/healthz`).then((r) => r.status)).toBe(200);

    expect(await get(withFile, address!)).toBe(401);
    expect(await get(withFile, address!, "credential-token-Vd7x")).toBe(401);
    expect(await get(withFile, address!, "file-token-8fQ2")).toBe(200);
    expect(await get(withCredential, address!, "file-token-8fQ2")).toBe(401);
    expect(await get(withCredential, address!, "credential-token-Vd7x")).toBe(200);

    for (const d of [open, withFile, withCredential]) {
      const logs = JSON.stringify(d.logs);
      expect(logs).not.toContain("file-token-8fQ2");
      expect(logs).not.toContain("credential-token-Vd7x");
      d.proc.kill("SIGTERM");
      expect(await d.exited).toBe(0);
    }
  });

  test("an unreadable --admin-token-file is a usage error (exit 2) before anything starts", async () => {
    const dir = await makeTempDir("admin-token-missing");
    const result = await runHooksd(FROM_SOURCE, ["serve", ...siteArgs(site), "--state-dir", join(dir, "state"), "--listen", "127.0.0.1:0", "--admin-token-file", join(dir, "nope")]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`--admin-token-file: cannot read ${join(dir, "nope")} (ENOENT)`);
    expect(await readdir(dir)).toEqual([]);
  });
});
