/**
 * Runs `hooksd serve` as a real process and talks to it over real sockets:
 * the signals, the listener and the state dir are the point of these tests.
 * Remotes, checkouts and deliveries come from the shared HTTP and CLI helpers.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { CLI_SOURCE, cleanEnv, gitlabPushBody, gitlabPushHeaders, LineCollector, REPO_ROOT, runProcess, type CliResult } from "../cli/support.ts";
import { makeTempDir } from "../helpers/git-fixture.ts";
import { createSite, createTarget, SECRET, type Site } from "../http/harness.ts";

export { SECRET };

/** hooksd from source: `bun src/cli.ts`. */
export const FROM_SOURCE = [process.execPath, CLI_SOURCE];

/** Compiles the executable into a directory of its own, so no other test's rebuild can swap it mid-run. */
export async function buildBinary(): Promise<string[]> {
  const outfile = join(await makeTempDir("daemon-bin"), "hooksd");
  // build.ts, not a bare `bun build`: it compiles in the deploy thread's entry point too.
  const build = await runProcess([process.execPath, "build.ts", outfile], cleanEnv(), REPO_ROOT);
  if (build.exitCode !== 0) throw new Error(`bun build.ts failed (${build.exitCode}):\n${build.stdout}${build.stderr}`);
  return [outfile];
}

export interface Daemon {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** http(s)://127.0.0.1:PORT/ */
  url: string;
  port: number;
  /** Every JSON log line so far. */
  readonly logs: Array<Record<string, unknown>>;
  stderr(): string;
  /** Resolves with the first log line (so far or later) that matches. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** The exit code, once stdout has been read to its end. */
  exited: Promise<number>;
}

export async function startDaemon(hooksd: string[], args: string[], env: Record<string, string> = {}): Promise<Daemon> {
  // Any free port, unless a config file says where (it may not be combined with flags).
  const listen = args.includes("--config") ? [] : ["--listen", "127.0.0.1:0"];
  const proc = Bun.spawn([...hooksd, "serve", ...listen, ...args], { env: cleanEnv(env), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const stdout = new LineCollector(proc.stdout);
  let errText = "";
  void (async () => {
    for await (const chunk of proc.stderr) errText += new TextDecoder().decode(chunk);
  })();
  const waitForLog = async (match: (line: Record<string, unknown>) => boolean, timeoutMs = 30_000) =>
    JSON.parse(await stdout.waitFor((line) => match(JSON.parse(line) as Record<string, unknown>), timeoutMs)) as Record<string, unknown>;

  const url = String((await waitForLog((l) => l.msg === "listening")).url);
  return {
    proc,
    url,
    port: Number(new URL(url).port),
    get logs() {
      return stdout.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    stderr: () => errText,
    waitForLog,
    exited: stdout.ended.then(() => proc.exited),
  };
}

/** A served remote (commits `base` and `next` on main), a checkout of it at base, and the files a daemon needs. */
export interface DaemonSite extends Site {
  repo: string;
  stateDir: string;
  secretFile: string;
}

/** `gate.wait` as the git server's onRequest holds pack responses while the gate is held. */
export interface Gate {
  hold(): void;
  release(): void;
  /** Resolves when a pack request arrives while held. */
  readonly reached: Promise<void>;
  wait(req: Request): Promise<undefined>;
}

export function createGate(): Gate {
  let held = false;
  let opened = Promise.resolve();
  let open = () => {};
  let markReached = () => {};
  let reached = new Promise<void>((r) => (markReached = r));
  return {
    get reached() {
      return reached;
    },
    hold() {
      held = true;
      opened = new Promise<void>((r) => (open = r));
      reached = new Promise<void>((r) => (markReached = r));
    },
    release() {
      held = false;
      open();
    },
    async wait(req) {
      if (held && req.method === "POST" && new URL(req.url).pathname.endsWith("/git-upload-pack")) {
        markReached();
        await opened;
      }
      return undefined;
    },
  };
}

export async function createDaemonSite(prefix: string, gate?: Gate): Promise<DaemonSite> {
  const site = await createSite(prefix, gate ? { onRequest: (req) => gate.wait(req) } : {});
  const { repo } = await createTarget(site);
  const secretFile = join(site.tmp, "secret");
  await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
  return { ...site, repo, stateDir: join(site.tmp, "state"), secretFile };
}

/** The flags every daemon in these tests starts with. */
export function siteArgs(site: DaemonSite): string[] {
  return ["--repo", site.repo, "--remote", site.url, "--secret-file", site.secretFile, "--state-dir", site.stateDir];
}

/** The real GitLab push fixture as a push of `after` onto main, signed with the site's secret. */
export async function gitlabPush(before: string, after: string): Promise<{ headers: Record<string, string>; body: string }> {
  return { headers: gitlabPushHeaders(SECRET), body: await gitlabPushBody("refs/heads/main", before, after) };
}

/** Runs `hooksd <args>` to completion. */
export function runHooksd(hooksd: string[], args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runProcess([...hooksd, ...args], cleanEnv(env));
}

export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}
