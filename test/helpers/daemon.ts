/**
 * Runs `hooksd serve` as a real process (from source, or dist/hooksd when
 * HOOKSD_BIN names it) and talks to it over real sockets: the signals, the
 * listener and the state dir are the point of these tests.
 */
import { readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { commitFiles, createRemote, git, makeTempDir, push } from "./git-fixture.ts";
import { startGitServer, type GitServer } from "./git-server.ts";

const REPO_ROOT = join(import.meta.dir, "../..");
const FIXTURES = join(REPO_ROOT, "../shared/fixtures/webhooks");
export const SECRET = "hooksd-daemon-test-secret-W3nBq8";

/** The command that runs hooksd: the compiled binary when HOOKSD_BIN is set, else the source. */
export function hooksdCommand(): string[] {
  return process.env.HOOKSD_BIN ? [process.env.HOOKSD_BIN] : [process.execPath, join(REPO_ROOT, "src/cli.ts")];
}

/** A scratch environment: nothing of the developer's (HOOKSD_SECRET, STATE_DIRECTORY) leaks in. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), LC_ALL: "C", ...extra };
}

export interface Daemon {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** http(s)://127.0.0.1:PORT/ */
  url: string;
  port: number;
  /** Every JSON log line so far. */
  logs: Array<Record<string, unknown>>;
  stderr(): string;
  /** Resolves with the first log line (so far or later) that matches. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<number>;
}

export async function startDaemon(args: string[], env: Record<string, string> = {}): Promise<Daemon> {
  const proc = Bun.spawn([...hooksdCommand(), "serve", "--listen", "127.0.0.1:0", ...args], {
    env: cleanEnv(env),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const logs: Array<Record<string, unknown>> = [];
  let errText = "";
  let ended = false;
  const pump = (async () => {
    let buffer = "";
    for await (const chunk of proc.stdout) {
      buffer += new TextDecoder().decode(chunk);
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      }
    }
    ended = true;
  })();
  void (async () => {
    for await (const chunk of proc.stderr) errText += new TextDecoder().decode(chunk);
  })();

  async function waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = logs.find(match);
      if (found) return found;
      if (ended || Date.now() > deadline) {
        throw new Error(`${ended ? "hooksd exited" : `no such log line within ${timeoutMs} ms`}; stdout:\n${logs.map((l) => JSON.stringify(l)).join("\n")}\nstderr:\n${errText}`);
      }
      await Bun.sleep(20);
    }
  }

  const listening = await waitForLog((l) => l.msg === "listening");
  const url = String(listening.url);
  return {
    proc,
    url,
    port: Number(new URL(url).port),
    logs,
    stderr: () => errText,
    waitForLog,
    exited: pump.then(() => proc.exited),
  };
}

/** A remote with commits `base` and `next` on main, served by the real git server, and a checkout at base. */
export interface Site {
  bare: string;
  work: string;
  server: GitServer;
  base: string;
  next: string;
  /** The checkout hooksd deploys into. */
  repo: string;
  stateDir: string;
  secretFile: string;
  tmp: string;
}

/** `gate`: while set, the git server holds every upload-pack (pack) response until it resolves. */
export interface Gate {
  hold(): void;
  release(): void;
  /** Resolves when a pack request arrives while held. */
  reached: Promise<void>;
}

export function createGate(): Gate & { wait(req: Request): Promise<undefined> } {
  let held = false;
  let open: () => void = () => {};
  let opened = Promise.resolve();
  let markReached: () => void = () => {};
  const gate = {
    reached: new Promise<void>((r) => (markReached = r)),
    hold() {
      held = true;
      opened = new Promise<void>((r) => (open = r));
      gate.reached = new Promise<void>((r) => (markReached = r));
    },
    release() {
      held = false;
      open();
    },
    async wait(req: Request): Promise<undefined> {
      if (held && req.method === "POST" && new URL(req.url).pathname.endsWith("/git-upload-pack")) {
        markReached();
        await opened;
      }
      return undefined;
    },
  };
  return gate;
}

export async function createSite(prefix: string, gate?: ReturnType<typeof createGate>): Promise<Site> {
  const tmp = await makeTempDir(prefix);
  const root = join(tmp, "repos");
  const { bare, work } = await createRemote(root, "site.git");
  const base = await commitFiles(work, { "index.html": "<h1>base</h1>\n" }, "base");
  const next = await commitFiles(work, { "index.html": "<h1>next</h1>\n", "about.html": "about\n" }, "next");
  await push(work);
  const server = await startGitServer({ root, ...(gate && { onRequest: (req) => gate.wait(req) }) });
  const repo = join(tmp, "site");
  await git(tmp, "clone", "--quiet", "--no-checkout", bare, repo);
  await git(repo, "checkout", "--quiet", "-B", "main", base);
  await git(repo, "remote", "set-url", "origin", server.url("site.git"));
  const secretFile = join(tmp, "secret");
  await writeFile(secretFile, SECRET + "\n", { mode: 0o600 });
  return { bare, work, server, base, next, repo, stateDir: join(tmp, "state"), secretFile, tmp };
}

/** The flags every daemon in these tests starts with. */
export function siteArgs(site: Site): string[] {
  return ["--repo", site.repo, "--secret-file", site.secretFile, "--state-dir", site.stateDir];
}

/** The real GitLab push fixture, pointed at a push of `after` onto main. */
export async function gitlabPush(before: string, after: string): Promise<{ headers: Record<string, string>; body: string }> {
  const payload = JSON.parse(await readFile(join(FIXTURES, "gitlab-push.json"), "utf8")) as Record<string, unknown>;
  return {
    headers: {
      "Content-Type": "application/json",
      "User-Agent": "GitLab/17.1.0-pre",
      "X-Gitlab-Event": "Push Hook",
      "X-Gitlab-Token": SECRET,
      "Idempotency-Key": crypto.randomUUID(),
      "X-Gitlab-Event-UUID": crypto.randomUUID(),
    },
    body: JSON.stringify({ ...payload, ref: "refs/heads/main", before, after, checkout_sha: after }),
  };
}

/** Runs `hooksd <args>` to completion. */
export async function runHooksd(args: string[], env: Record<string, string> = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([...hooksdCommand(), ...args], { env: cleanEnv(env), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  return { exitCode, stdout, stderr };
}

export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(25);
  }
}
