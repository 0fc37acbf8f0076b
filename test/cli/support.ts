/**
 * Helpers for tests that drive hooksd from the outside: in-process through
 * main(argv), or as a process (from source, or the compiled binary).
 */
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli.ts";

export const REPO_ROOT = join(import.meta.dir, "../..");
export const CLI_SOURCE = join(REPO_ROOT, "src/cli.ts");
export const WEBHOOK_FIXTURES = join(REPO_ROOT, "../shared/fixtures/webhooks");

/** How long runMain waits before it decides main() is serving rather than failing. */
const STUCK_MS = 5_000;

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs main(argv) in this process with `env` applied on top of process.env
 * (undefined removes a variable) and stdout/stderr captured. Everything is
 * restored afterwards, including variables main() itself deleted.
 */
export async function runMain(argv: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const savedEnv = new Map(Object.keys(env).concat("HOOKSD_SECRET").map((k) => [k, process.env[k]]));
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  const out: string[] = [];
  const err: string[] = [];
  const writeOut = process.stdout.write;
  const writeErr = process.stderr.write;
  const capture = (sink: string[]) =>
    ((chunk: string | Uint8Array) => {
      sink.push(typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk));
      return true;
    }) as typeof process.stdout.write;
  process.stdout.write = capture(out);
  process.stderr.write = capture(err);
  try {
    // A command that should have failed but started serving instead would
    // never return: stop it the way a signal would, then report it.
    let timer: Timer | undefined;
    const stuck = new Promise<"stuck">((resolve) => (timer = setTimeout(() => resolve("stuck"), STUCK_MS)));
    const exitCode = await Promise.race([main(argv), stuck]);
    clearTimeout(timer);
    if (exitCode === "stuck") {
      process.emit("SIGTERM", "SIGTERM");
      throw new Error(`main(${JSON.stringify(argv)}) did not return within ${STUCK_MS} ms (it started serving?)\nstdout: ${out.join("")}`);
    }
    return { exitCode, stdout: out.join(""), stderr: err.join("") };
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
    for (const [key, value] of savedEnv) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

/**
 * An environment built from scratch, so that the developer's HOOKSD_SECRET,
 * STATE_DIRECTORY or XDG_STATE_HOME can never leak into a spawned hooksd.
 */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), LC_ALL: "C", ...extra };
}

/** Runs `bun src/cli.ts ...args` to completion. */
export async function runCliProcess(args: string[], env: Record<string, string>): Promise<CliResult> {
  return runProcess([process.execPath, CLI_SOURCE, ...args], env);
}

export async function runProcess(cmd: string[], env: Record<string, string>, cwd = REPO_ROOT): Promise<CliResult> {
  const proc = Bun.spawn(cmd, { cwd, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  return { exitCode, stdout, stderr };
}

/** Collects a stream's lines as they arrive and lets a test wait for one. */
export class LineCollector {
  readonly lines: string[] = [];
  readonly ended: Promise<void>;
  #waiters: Array<() => void> = [];

  constructor(stream: ReadableStream<Uint8Array>) {
    this.ended = this.#pump(stream);
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of stream) {
      buffer += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        this.#push(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
      }
    }
    if (buffer) this.#push(buffer);
    this.#wake();
  }

  #push(line: string): void {
    this.lines.push(line);
    this.#wake();
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  /** Resolves with the first line (seen so far or later) that matches; rejects after timeoutMs or at the end of the stream. */
  async waitFor(match: (line: string) => boolean, timeoutMs: number, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let ended = false;
    void this.ended.then(() => (ended = true));
    for (;;) {
      const found = this.lines.slice(from).find(match);
      if (found !== undefined) return found;
      if (ended) throw new Error(`stream ended without a matching line; lines:\n${this.text()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching line within ${timeoutMs} ms; lines so far:\n${this.text()}`);
      await Promise.race([new Promise<void>((wake) => this.#waiters.push(wake)), Bun.sleep(Math.min(left, 200))]);
    }
  }

  text(): string {
    return this.lines.join("\n");
  }
}

/** Parses every non-empty line as JSON; throws naming the first line that is not a JSON object. */
export function parseJsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new Error(`not a JSON line: ${JSON.stringify(line)}`);
      }
      if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`not a JSON object: ${line}`);
      return value as Record<string, unknown>;
    });
}

/**
 * Everything under `dir` (including .git), by relative path: type, mode and a
 * hash of the content. Undefined when dir does not exist. Two equal snapshots
 * mean nothing was created, removed or rewritten with different content.
 */
export async function snapshot(dir: string): Promise<Record<string, string> | undefined> {
  if (!(await lstat(dir).catch(() => undefined))) return undefined;
  const found: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(join(dir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      const full = join(dir, path);
      const { mode } = await lstat(full);
      const perm = (mode & 0o7777).toString(8);
      if (entry.isDirectory()) {
        found[`${path}/`] = `dir ${perm}`;
        await walk(path);
      } else if (entry.isSymbolicLink()) {
        found[path] = `symlink -> ${await readlink(full)}`;
      } else {
        found[path] = `file ${perm} ${createHash("sha1").update(await readFile(full)).digest("hex")}`;
      }
    }
  };
  await walk("");
  return found;
}

/** Headers GitLab sends with a push delivery (see ../shared/fixtures/webhooks/SOURCES.md). */
export function gitlabPushHeaders(token: string | undefined): Record<string, string> {
  return {
    "Content-Type": "application/json",
    "User-Agent": "GitLab/17.1.0-pre",
    "X-Gitlab-Event": "Push Hook",
    "X-Gitlab-Instance": "https://gitlab.example.com",
    "Idempotency-Key": crypto.randomUUID(),
    "X-Gitlab-Event-UUID": crypto.randomUUID(),
    ...(token === undefined ? {} : { "X-Gitlab-Token": token }),
  };
}

/** The real GitLab push payload, adapted in memory to a push of `after` onto `ref`. */
export async function gitlabPushBody(ref: string, before: string, after: string): Promise<string> {
  const payload = JSON.parse(await readFile(join(WEBHOOK_FIXTURES, "gitlab-push.json"), "utf8")) as Record<string, unknown>;
  return JSON.stringify({ ...payload, ref, before, after, checkout_sha: after });
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = server.port!;
  await server.stop(true);
  return port;
}
