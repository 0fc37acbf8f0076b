/**
 * The command line: every bad flag is exit 2 with a message naming it, and
 * nothing (no DIR, no state dir) is created before the whole configuration
 * has been validated. Mostly in-process through main(argv); a few tests spawn
 * `bun src/cli.ts` where the real process's exit code and output matter.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { serveFlags } from "../../src/cli/flags.ts";
import { commitFiles, git, makeTempDir, removeTempDirs } from "../helpers/git-fixture.ts";
import { cleanEnv, CLI_SOURCE, LineCollector, parseJsonLines, runCliProcess, runMain, snapshot } from "./support.ts";

// Native git builds the fixtures; on a busy machine one call can take seconds.
setDefaultTimeout(30_000);

/*
 * Every in-process serve that is expected to fail still gets --listen
 * 127.0.0.1:0 where the flag is not the point, so that a case which wrongly
 * passes starts on a free port (and is stopped by runMain) instead of 8000.
 */

/** A remote nobody needs to reach: usage errors happen before any network traffic. */
const REMOTE = "http://127.0.0.1:9/site.git";

let root: string;
/** Everything the usage-error tests point at; each test asserts none of it changed. */
const paths = {
  checkout: "",
  pathOrigin: "",
  plain: "",
  aFile: "",
  missing: "",
  secret: "",
  emptySecret: "",
  credsNoColon: "",
  stateDir: "",
};

/** A native-git checkout of branch main with one commit and `origin` set. */
async function makeCheckout(dir: string, origin = REMOTE): Promise<string> {
  await mkdir(dir, { recursive: true });
  await git(dir, "init", "--quiet");
  await git(dir, "remote", "add", "origin", origin);
  await commitFiles(dir, { "index.html": "<h1>hi</h1>\n" }, "first");
  return dir;
}

beforeAll(async () => {
  root = await makeTempDir("cli");
  paths.checkout = await makeCheckout(join(root, "checkout"));
  paths.pathOrigin = await makeCheckout(join(root, "path-origin"), "/srv/git/site.git");
  paths.plain = join(root, "plain");
  await mkdir(paths.plain);
  await writeFile(join(paths.plain, "index.html"), "not a checkout\n");
  paths.aFile = join(root, "a-file");
  await writeFile(paths.aFile, "a file, not a directory\n");
  paths.missing = join(root, "missing", "site");
  paths.secret = join(root, "secret");
  await writeFile(paths.secret, "file-secret-4711\n", { mode: 0o600 });
  paths.emptySecret = join(root, "empty-secret");
  await writeFile(paths.emptySecret, "");
  paths.credsNoColon = join(root, "creds-no-colon");
  await writeFile(paths.credsNoColon, "glpat-token-without-user\n", { mode: 0o600 });
});
afterAll(removeTempDirs);

let stateDirs = 0;

const exists = (path: string) => stat(path).then(() => true, () => false);

/**
 * Runs main(argv) with the default state dir pointed into the fixture root,
 * and asserts exit 2, a message on stderr naming every `mentions`, nothing on
 * stdout, and nothing created or changed anywhere under the fixture root.
 */
async function expectUsageError(argv: string[], mentions: string[], env: Record<string, string | undefined> = {}) {
  // A state dir of its own, so that one test that wrongly creates it cannot fail the others.
  paths.stateDir = join(root, `state-${++stateDirs}`);
  const before = await snapshot(root);
  const result = await runMain(argv, { STATE_DIRECTORY: paths.stateDir, XDG_STATE_HOME: undefined, HOOKSD_SECRET: undefined, ...env });
  expect({ exitCode: result.exitCode, stdout: result.stdout }).toEqual({ exitCode: 2, stdout: "" });
  expect(result.stderr).toStartWith("hooksd: ");
  for (const text of mentions) expect(result.stderr).toContain(text);
  expect(await snapshot(root)).toEqual(before);
  expect(await exists(paths.stateDir)).toBe(false);
  expect(await exists(paths.missing)).toBe(false);
  return result;
}

type Case = { name: string; args: () => string[]; mentions: string[]; never?: string[] };

/** Problems with the target: the same answer from serve and from deploy. */
const targetCases: Case[] = [
  { name: "an unknown flag is refused by name", args: () => ["--repo", paths.checkout, "--bogus"], mentions: ["unknown flag --bogus"] },
  { name: "a missing --repo is refused", args: () => [], mentions: ["--repo is required"] },
  { name: "--repo without a value is refused", args: () => ["--repo"], mentions: ["--repo needs a value"] },
  { name: "a positional argument is refused", args: () => [paths.checkout], mentions: ["unexpected argument"] },
  { name: "an ftp:// remote is refused", args: () => ["--repo", paths.checkout, "--remote", "ftp://x"], mentions: ["--remote", "http://"] },
  {
    name: "a remote URL carrying credentials is refused without echoing them",
    args: () => ["--repo", paths.checkout, "--remote", "http://user:pw-in-url-7731@host/x"],
    mentions: ["--remote", "must not carry credentials"],
    never: ["pw-in-url-7731"],
  },
  { name: "a remote that is not a URL is refused rather than crashing", args: () => ["--repo", paths.checkout, "--remote", "not a url"], mentions: ["--remote", "must be a URL"] },
  { name: "a checkout whose origin is a local path is refused rather than crashing", args: () => ["--repo", paths.pathOrigin], mentions: ["origin", "must be a URL"] },
  { name: "an invalid branch name like a..b is refused", args: () => ["--repo", paths.checkout, "--branch", "a..b"], mentions: ["--branch"] },
  { name: "a fetch timeout of 0 is refused", args: () => ["--repo", paths.checkout, "--fetch-timeout", "0"], mentions: ["--fetch-timeout"] },
  { name: "a fetch timeout that is not a number is refused", args: () => ["--repo", paths.checkout, "--fetch-timeout", "abc"], mentions: ["--fetch-timeout"] },
  { name: "a name with a slash is refused", args: () => ["--repo", paths.checkout, "--name", "a/b"], mentions: ["--name"] },
  { name: "a missing credentials file is refused", args: () => ["--repo", paths.checkout, "--credentials-file", "/missing/creds"], mentions: ["--credentials-file", "/missing/creds"] },
  {
    name: "a credentials file without a colon is refused without echoing its content",
    args: () => ["--repo", paths.checkout, "--credentials-file", paths.credsNoColon],
    mentions: ["--credentials-file", "username:token"],
    never: ["glpat-token-without-user"],
  },
  { name: "a DIR that is not a checkout is refused without --remote", args: () => ["--repo", paths.plain], mentions: ["--repo", "not a git checkout", "--remote"] },
  {
    name: "a non-empty DIR that is not a checkout is refused even with --remote",
    args: () => ["--repo", paths.plain, "--remote", REMOTE, "--branch", "main"],
    mentions: ["--repo", "neither a git checkout nor empty"],
  },
  { name: "a DIR that is a file is refused even with --remote", args: () => ["--repo", paths.aFile, "--remote", REMOTE, "--branch", "main"], mentions: ["--repo", "not a directory"] },
  { name: "a missing DIR with --remote still needs --branch", args: () => ["--repo", paths.missing, "--remote", REMOTE], mentions: ["--branch"] },
  {
    name: "a secret given on the command line is an unknown flag and is not echoed",
    args: () => ["--repo", paths.checkout, "--secret", "cli-secret-0815"],
    mentions: ["unknown flag --secret"],
    never: ["cli-secret-0815"],
  },
  {
    name: "a secret given as --secret=VALUE is an unknown flag and is not echoed",
    args: () => ["--repo", paths.checkout, "--secret=cli-secret-0815"],
    mentions: ["unknown flag --secret"],
    never: ["cli-secret-0815"],
  },
];

describe("hooksd serve: usage errors", () => {
  for (const c of targetCases) {
    test(`${c.name} (serve)`, async () => {
      // Port 0: should a case wrongly pass, the server it starts takes no fixed port.
      const { stderr } = await expectUsageError(["serve", "--secret-file", paths.secret, "--listen", "127.0.0.1:0", ...c.args()], c.mentions);
      for (const text of c.never ?? []) expect(stderr).not.toContain(text);
    });
  }

  test("--listen nonsense is refused by name", async () => {
    await expectUsageError(["serve", "--repo", paths.checkout, "--secret-file", paths.secret, "--listen", "nonsense"], ["--listen", "nonsense"]);
  });

  test("--listen with a port above 65535 is refused by name", async () => {
    await expectUsageError(["serve", "--repo", paths.checkout, "--secret-file", paths.secret, "--listen", "1.2.3.4:99999"], ["--listen", "1.2.3.4:99999"]);
  });

  test("a missing secret file is refused by name", async () => {
    await expectUsageError(["serve", "--listen", "127.0.0.1:0", "--repo", paths.checkout, "--secret-file", "/missing"], ["--secret-file", "/missing"]);
  });

  test("an empty secret file is refused by name", async () => {
    await expectUsageError(["serve", "--listen", "127.0.0.1:0", "--repo", paths.checkout, "--secret-file", paths.emptySecret], ["--secret-file", "empty"]);
  });

  test("a secret given both as a file and as HOOKSD_SECRET is refused, and neither is printed", async () => {
    const { stderr } = await expectUsageError(
      ["serve", "--listen", "127.0.0.1:0", "--repo", paths.checkout, "--secret-file", paths.secret],
      ["--secret-file", "HOOKSD_SECRET"],
      { HOOKSD_SECRET: "env-secret-1234" },
    );
    expect(stderr).not.toContain("env-secret-1234");
    expect(stderr).not.toContain("file-secret-4711");
  });

  test("serve refuses to start without a secret and says how to give one", async () => {
    await expectUsageError(["serve", "--listen", "127.0.0.1:0", "--repo", paths.checkout], ["--secret-file", "HOOKSD_SECRET", "--allow-unauthenticated"]);
  });

  test("an empty HOOKSD_SECRET does not count as a secret", async () => {
    await expectUsageError(["serve", "--listen", "127.0.0.1:0", "--repo", paths.checkout], ["--secret-file", "HOOKSD_SECRET"], { HOOKSD_SECRET: "" });
  });

  test("a default state dir ($STATE_DIRECTORY) inside the repo is refused unless --state-dir is given", async () => {
    const inside = join(paths.checkout, ".hooksd");
    await expectUsageError(["serve", "--listen", "127.0.0.1:0", "--repo", paths.checkout, "--secret-file", paths.secret], ["--state-dir", inside], { STATE_DIRECTORY: inside });
    expect(await exists(inside)).toBe(false);
  });

  test("a default state dir from XDG_STATE_HOME inside the repo is refused too", async () => {
    await expectUsageError(["serve", "--listen", "127.0.0.1:0", "--repo", paths.checkout, "--secret-file", paths.secret], ["--state-dir"], {
      STATE_DIRECTORY: undefined,
      XDG_STATE_HOME: paths.checkout,
    });
    expect(await exists(join(paths.checkout, "hooksd"))).toBe(false);
  });

  test("a default state dir whose name merely starts with '..' inside the repo is still refused", async () => {
    await expectUsageError(["serve", "--listen", "127.0.0.1:0", "--repo", paths.checkout, "--secret-file", paths.secret], ["--state-dir"], {
      STATE_DIRECTORY: join(paths.checkout, "..hooksd"),
    });
  });

  test("a port already in use is exit 2 naming --listen, not a crash", async () => {
    const busy = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    const stateDir = await makeTempDir("cli-state");
    try {
      const before = await snapshot(root);
      const result = await runMain(["serve", "--repo", paths.checkout, "--secret-file", paths.secret, "--listen", `127.0.0.1:${busy.port}`, "--state-dir", stateDir]);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(`--listen: cannot listen on 127.0.0.1:${busy.port}`);
      expect(await snapshot(root)).toEqual(before);
    } finally {
      await busy.stop(true);
    }
  });
});

describe("hooksd deploy: usage errors", () => {
  for (const c of targetCases) {
    test(`${c.name} (deploy)`, async () => {
      const { stderr } = await expectUsageError(["deploy", ...c.args()], c.mentions);
      for (const text of c.never ?? []) expect(stderr).not.toContain(text);
    });
  }

  test("--branch '*' is refused because a one-off deploy needs a branch", async () => {
    await expectUsageError(["deploy", "--repo", paths.checkout, "--branch", "*"], ["--branch"]);
  });

  test("serve-only flags are unknown to deploy", async () => {
    await expectUsageError(["deploy", "--repo", paths.checkout, "--listen", "127.0.0.1:8000"], ["unknown flag --listen"]);
    await expectUsageError(["deploy", "--repo", paths.checkout, "--secret-file", paths.secret], ["unknown flag --secret-file"]);
  });
});

describe("hooksd: commands, help and version", () => {
  test("an unknown subcommand is exit 2 naming it", async () => {
    await expectUsageError(["frobnicate", "--repo", paths.checkout], ["unknown command 'frobnicate'"]);
  });

  test("no command at all is exit 2 with the usage on stderr", async () => {
    const result = await runMain([]);
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("Usage:");
  });

  test("--help is exit 0 and lists every flag of every subcommand", async () => {
    const result = await runMain(["--help"]);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe("");
    for (const flag of [...Object.keys(serveFlags).map((name) => `--${name}`), "--version"]) {
      expect(result.stdout).toContain(flag);
    }
    expect(result.stdout).toContain("HOOKSD_SECRET");
  });

  test("--help after a subcommand is exit 0 with the same text", async () => {
    const top = await runMain(["--help"]);
    for (const command of ["serve", "deploy"]) {
      const result = await runMain([command, "--help"]);
      expect({ exitCode: result.exitCode, stdout: result.stdout }).toEqual({ exitCode: 0, stdout: top.stdout });
    }
  });

  test("--version prints the package.json version", async () => {
    const result = await runMain(["--version"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(`hooksd ${pkg.version}\n`);
  });
});

describe("hooksd as a process", () => {
  test("a usage error exits 2 with a one-line message and no stack trace", async () => {
    const result = await runCliProcess(["serve", "--repo", paths.checkout, "--secret-file", paths.secret, "--listen", "nonsense"], cleanEnv());
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe("hooksd: --listen: 'nonsense' is not HOST:PORT (e.g. 127.0.0.1:8000)\nRun 'hooksd --help' for usage.\n");
  });

  /** Starts `bun src/cli.ts serve ...`, waits for its "listening" line and returns it parsed. */
  async function startServe(args: string[], env: Record<string, string>) {
    const proc = Bun.spawn([process.execPath, CLI_SOURCE, "serve", "--listen", "127.0.0.1:0", ...args], {
      env: cleanEnv(env),
      stdout: "pipe",
      stderr: "pipe",
    });
    const stdout = new LineCollector(proc.stdout);
    const stderr = new LineCollector(proc.stderr);
    const line = await stdout.waitFor((l) => l.includes('"listening"'), 10_000).catch((err: Error) => {
      proc.kill();
      throw new Error(`${err.message}\nstderr:\n${stderr.text()}`);
    });
    const listening = JSON.parse(line) as { url: string; authenticated: boolean; repo: string };
    const stop = async () => {
      proc.kill("SIGTERM");
      const exitCode = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => "still running")]);
      if (exitCode === "still running") proc.kill("SIGKILL");
      await stdout.ended;
      return { exitCode, stdout: stdout.text(), stderr: stderr.text() };
    };
    return { listening, stop };
  }

  test("serve with --allow-unauthenticated and no secret starts, answers, and stops with exit 0 on SIGTERM", async () => {
    const tmp = await makeTempDir("cli-serve");
    const checkout = await makeCheckout(join(tmp, "site"));
    const stateDir = join(tmp, "state");
    const before = await snapshot(checkout);

    const { listening, stop } = await startServe(["--repo", checkout, "--allow-unauthenticated"], { STATE_DIRECTORY: stateDir });
    expect(listening.authenticated).toBe(false);
    expect(listening.repo).toBe(checkout);
    const health = await fetch(new URL("/healthz", listening.url));
    expect(health.status).toBe(200);
    // The state dir is made private; the checkout is not touched by starting.
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    expect(await snapshot(checkout)).toEqual(before);

    const stopped = await stop();
    expect(stopped.exitCode).toBe(0);
    expect(stopped.stderr).toBe("");
    const logs = parseJsonLines(stopped.stdout);
    expect(logs.map((l) => l.msg)).toEqual(["listening", "request", "stopping"]);
  });

  test("serve with HOOKSD_SECRET starts authenticated and never prints the secret", async () => {
    const tmp = await makeTempDir("cli-serve");
    const checkout = await makeCheckout(join(tmp, "site"));
    const { listening, stop } = await startServe(["--repo", checkout, "--state-dir", join(tmp, "state")], { HOOKSD_SECRET: "env-secret-5678" });
    expect(listening.authenticated).toBe(true);
    const stopped = await stop();
    expect(stopped.exitCode).toBe(0);
    expect(stopped.stdout + stopped.stderr).not.toContain("env-secret-5678");
  });

  test("serve accepts a state dir inside the repo when --state-dir asks for it", async () => {
    const tmp = await makeTempDir("cli-serve");
    const checkout = await makeCheckout(join(tmp, "site"));
    const inside = join(checkout, ".hooksd-state");
    const { stop } = await startServe(["--repo", checkout, "--secret-file", paths.secret, "--state-dir", inside], {});
    expect(await exists(inside)).toBe(true);
    expect((await stop()).exitCode).toBe(0);
  });

  test("serve with --remote accepts a missing DIR and does not create it before a deploy", async () => {
    const tmp = await makeTempDir("cli-serve");
    const dir = join(tmp, "not-yet", "site");
    const { listening, stop } = await startServe(
      ["--repo", dir, "--remote", REMOTE, "--branch", "main", "--secret-file", paths.secret, "--state-dir", join(tmp, "state")],
      {},
    );
    expect(listening.repo).toBe(dir);
    expect(await exists(join(tmp, "not-yet"))).toBe(false);
    expect((await stop()).exitCode).toBe(0);
  });
});
