/**
 * The unit file as shipped and as `hooksd install-unit` writes it: systemd's
 * own checker accepts it without a warning, and its offline security review
 * scores 2.0 or lower.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmod, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeTempDir, removeTempDirs } from "../helpers/git-fixture.ts";
import { REPO_ROOT, UNIT_FILE } from "./support.ts";

setDefaultTimeout(60_000);

const analyze = Bun.which("systemd-analyze");
if (!analyze) console.log("skipping systemd-analyze verify/security: systemd-analyze is not installed (.ci/run installs systemd)");

let dir: string;
/** Stands in for /usr/local/bin/hooksd: verify only checks that ExecStart= names an executable. */
let bin: string;

beforeAll(async () => {
  dir = await makeTempDir("unit");
  bin = join(dir, "bin", "hooksd");
  await mkdir(join(dir, "bin"));
  await writeFile(bin, "#!/bin/sh\nexit 0\n");
  await chmod(bin, 0o755);
});
afterAll(removeTempDirs);

async function run(cmd: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(cmd, { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  return { code, stdout, stderr };
}

const hooksd = (args: string[], env: Record<string, string> = {}) => run([process.execPath, "src/cli.ts", ...args], env);

/** A copy of `unit` named hooksd.service (the name matters to verify) in a fresh dir. */
async function placeUnit(unit: string): Promise<string> {
  const unitDir = await makeTempDir("unit-copy");
  const path = join(unitDir, "hooksd.service");
  await writeFile(path, unit);
  return path;
}

async function verify(path: string) {
  return run([analyze!, "verify", path]);
}

async function exposure(path: string): Promise<number> {
  const { code, stdout, stderr } = await run([analyze!, "security", "--offline=true", path]);
  const score = /Overall exposure level for hooksd\.service: (\d+\.\d+)/.exec(stdout)?.[1];
  if (code !== 0 || score === undefined) throw new Error(`systemd-analyze security failed (${code}):\n${stdout}${stderr}`);
  return Number(score);
}

const shipped = async () => (await readFile(UNIT_FILE, "utf8")).replace("ExecStart=/usr/local/bin/hooksd ", `ExecStart=${bin} `);

describe.skipIf(!analyze)("systemd-analyze", () => {
  test("verify accepts systemd/hooksd.service without a single warning", async () => {
    const result = await verify(await placeUnit(await shipped()));
    expect(result).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("verify does complain about a unit with a mistyped directive (so the check above means something)", async () => {
    const result = await verify(await placeUnit((await shipped()).replace("ProtectSystem=strict", "ProtectSytem=strict")));
    expect(result.stderr).toContain("ProtectSytem");
  });

  test("the offline security review scores systemd/hooksd.service 2.0 or lower", async () => {
    const score = await exposure(await placeUnit(await shipped()));
    console.log(`systemd-analyze security --offline=true systemd/hooksd.service: ${score}`);
    expect(score).toBeLessThanOrEqual(2.0);
  });

  test("the review does see a weaker unit: without the sandbox it scores far above 2.0", async () => {
    const unit = await shipped();
    const sandbox = unit.slice(unit.indexOf("\nReadWritePaths="), unit.indexOf("\n[Install]"));
    expect(await exposure(await placeUnit(unit.replace(sandbox, "")))).toBeGreaterThan(5);
  });

  for (const [label, repo] of [["under /srv", "/srv/www/site"], ["under /home, with a space", "/home/www/my site"]] as const) {
    test(`units written by install-unit for a site ${label} pass verify and score 2.0 or lower`, async () => {
      const dest = await makeTempDir("unit-dest");
      const written = await hooksd(["install-unit", "--repo", repo, "--remote", "https://git.example.com/site.git", "--dest", dest, "--bin", bin, "--credentials-file", "/etc/hooksd/git-credentials"]);
      expect(written.code).toBe(0);
      const path = join(dest, "hooksd.service");
      expect(await verify(path)).toEqual({ code: 0, stdout: "", stderr: "" });
      expect(await exposure(path)).toBeLessThanOrEqual(2.0);
    });
  }
});

describe("hooksd install-unit", () => {
  const directives = (unit: string) => unit.split("\n").filter((line) => /^#?(ExecStart|ReadWritePaths|BindPaths|ProtectHome|LoadCredential)=/.test(line));

  test("fills in ExecStart=, ReadWritePaths= and the credential sources, and leaves every other line as shipped", async () => {
    const dest = await makeTempDir("install");
    const result = await hooksd(["install-unit", "--repo", "/srv/www/blog", "--remote", "https://git.example.com/blog.git", "--branch", "main", "--name", "blog", "--listen", "0.0.0.0:9000", "--force", "--dest", dest]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`wrote ${join(dest, "hooksd.service")}`);
    expect(result.stdout).toContain("note: /srv/www/blog does not exist yet");
    const unit = await readFile(join(dest, "hooksd.service"), "utf8");
    expect(directives(unit)).toEqual([
      "ExecStart=/usr/local/bin/hooksd serve --repo /srv/www/blog --remote https://git.example.com/blog.git --branch main --name blog --force --listen 0.0.0.0:9000",
      "LoadCredential=webhook-secret:/etc/hooksd/webhook-secret",
      "#LoadCredential=git-credentials:/etc/hooksd/git-credentials",
      "ReadWritePaths=/srv/www/blog",
      "ProtectHome=yes",
    ]);
    const template = await readFile(UNIT_FILE, "utf8");
    const others = (text: string) => text.split("\n").filter((line) => !directives(text).includes(line));
    expect(others(unit)).toEqual(others(template));
  });

  test("secret files become LoadCredential= sources; no secret value ever reaches the unit or the output", async () => {
    const dest = await makeTempDir("install-secret");
    const secretFile = join(dest, "..", `${dest.split("/").pop()}-secret`);
    await writeFile(secretFile, "file-secret-value-31337\n", { mode: 0o600 });
    const result = await hooksd(
      ["install-unit", "--repo", "/srv/www/site", "--remote", "https://git.example.com/site.git", "--secret-file", secretFile, "--credentials-file", "/etc/hooksd/deploy-token", "--dest", dest],
      { HOOKSD_SECRET: "env-secret-value-4242" },
    );
    expect(result.code).toBe(0);
    const unit = await readFile(join(dest, "hooksd.service"), "utf8");
    expect(directives(unit)).toContain(`LoadCredential=webhook-secret:${secretFile}`);
    expect(directives(unit)).toContain("LoadCredential=git-credentials:/etc/hooksd/deploy-token");
    expect(unit).not.toContain("--secret-file");
    expect(unit).not.toContain("--credentials-file");
    for (const text of [unit, result.stdout, result.stderr]) {
      expect(text).not.toContain("file-secret-value-31337");
      expect(text).not.toContain("env-secret-value-4242");
    }
    // The git credentials file does not exist: the operator is told before systemd refuses to start.
    expect(result.stdout).toContain("/etc/hooksd/deploy-token (credential git-credentials) does not exist yet");
  });

  test("a site under /home gets ProtectHome=tmpfs with the site bound in; spaces, % and $ are quoted for systemd", async () => {
    const dest = await makeTempDir("install-home");
    const result = await hooksd(["install-unit", "--repo", "/home/www/100% site", "--remote", "https://git.example.com/site.git", "--branch", "re$lease", "--state-dir", "/var/lib/other state", "--dest", dest]);
    expect(result.code).toBe(0);
    expect(directives(await readFile(join(dest, "hooksd.service"), "utf8"))).toEqual([
      'ExecStart=/usr/local/bin/hooksd serve --repo "/home/www/100%% site" --remote https://git.example.com/site.git --branch re$$lease --state-dir "/var/lib/other state"',
      "LoadCredential=webhook-secret:/etc/hooksd/webhook-secret",
      "#LoadCredential=git-credentials:/etc/hooksd/git-credentials",
      'ReadWritePaths="/var/lib/other state"',
      'BindPaths="/home/www/100%% site"',
      "ProtectHome=tmpfs",
    ]);
  });

  test("--allow-unauthenticated leaves the webhook-secret credential out (systemd would refuse a missing file)", async () => {
    const dest = await makeTempDir("install-unauth");
    expect((await hooksd(["install-unit", "--repo", "/srv/www/site", "--allow-unauthenticated", "--dest", dest])).code).toBe(0);
    const unit = await readFile(join(dest, "hooksd.service"), "utf8");
    expect(directives(unit)).toContain("#LoadCredential=webhook-secret:/etc/hooksd/webhook-secret");
    expect(directives(unit)[0]).toBe("ExecStart=/usr/local/bin/hooksd serve --repo /srv/www/site --allow-unauthenticated");
  });

  test("with --config, ExecStart= runs that file, every target's repo is writable, and the file's own secret paths stay its business", async () => {
    const dest = await makeTempDir("install-config");
    const config = join(dest, "..", `${dest.split("/").pop()}.toml`);
    await writeFile(
      config,
      `state_dir = "/var/lib/hooksd-sites"
[[targets]]
name = "www"
repo = "/srv/www/site"
remote = "https://git.example.com/team/www.git"
branch = "main"
secret_files = ["/run/credentials/hooksd.service/webhook-secret"]
[[targets]]
name = "docs"
repo = "/home/docs/public"
remote = "https://git.example.com/team/docs.git"
branch = "main"
secret_files = ["/run/credentials/hooksd.service/webhook-secret"]
`,
    );
    // The secret files do not exist here: they appear only when systemd starts the service.
    const result = await hooksd(["install-unit", "--config", config, "--dest", dest, "--bin", bin]);
    expect(result.code).toBe(0);
    expect(directives(await readFile(join(dest, "hooksd.service"), "utf8"))).toEqual([
      `ExecStart=${bin} serve --config ${config}`,
      "#LoadCredential=webhook-secret:/etc/hooksd/webhook-secret",
      "#LoadCredential=git-credentials:/etc/hooksd/git-credentials",
      "ReadWritePaths=/srv/www/site /var/lib/hooksd-sites",
      "BindPaths=/home/docs/public",
      "ProtectHome=tmpfs",
    ]);
    if (analyze) expect(await verify(join(dest, "hooksd.service"))).toEqual({ code: 0, stdout: "", stderr: "" });

    const mixed = await hooksd(["install-unit", "--config", config, "--repo", "/srv/www/site", "--dest", dest]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain("--repo cannot be combined with --config");
  });

  const usageErrors: Array<[string, string[], string]> = [
    ["no --repo", [], "--repo"],
    ["a --dest that is not a directory", ["--repo", "/srv/www/site", "--dest", "/nonexistent/units"], "--dest"],
    ["a relative --bin", ["--repo", "/srv/www/site", "--bin", "bin/hooksd"], "--bin"],
    ["a bad --listen", ["--repo", "/srv/www/site", "--listen", "8000"], "--listen"],
    ["a config file that fails its schema", ["--config", join(REPO_ROOT, "package.json")], "targets"],
    ["a newline in a value", ["--repo", "/srv/www/site", "--name", "site\nExecStartPre=/bin/rm -rf /"], "--name"],
    ["a secret file path with a space", ["--repo", "/srv/www/site", "--secret-file", "/etc/hooksd/my secret"], "--secret-file"],
    ["an unknown flag", ["--repo", "/srv/www/site", "--secret", "x"], "--secret"],
  ];
  for (const [label, args, flag] of usageErrors) {
    test(`${label} is exit 2 naming ${flag}, and nothing is written`, async () => {
      const dest = await makeTempDir("install-bad");
      const result = await hooksd(["install-unit", ...args, ...(args.includes("--dest") ? [] : ["--dest", dest])]);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toStartWith("hooksd: ");
      expect(result.stderr).toContain(flag);
      expect(await readdir(dest)).toEqual([]);
    });
  }
});
