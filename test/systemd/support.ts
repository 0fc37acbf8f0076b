/**
 * Helpers for the systemd tests: the compiled executable, a real notify
 * socket listener (python3, as systemd's stand-in), and line collection from
 * a running process.
 */
import type { Subprocess } from "bun";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export const REPO_ROOT = join(import.meta.dir, "../..");
export const UNIT_FILE = join(REPO_ROOT, "systemd/hooksd.service");
export const WEBHOOK_FIXTURES = join(REPO_ROOT, "../shared/fixtures/webhooks");

/** Builds the executable exactly as `npm run build` does, into `dir`. */
export async function buildHooksd(dir: string): Promise<string> {
  const outfile = join(dir, "hooksd");
  const proc = Bun.spawn([process.execPath, "build.ts", outfile], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  if (code !== 0) throw new Error(`bun build.ts failed (${code}):\n${stdout}${stderr}`);
  return outfile;
}

/** Sends the real GitLab push payload (../shared/fixtures/webhooks), adapted to a push of `after` onto main. */
export async function deliver(url: string, token: string, after: string): Promise<Response> {
  const payload = JSON.parse(await readFile(join(WEBHOOK_FIXTURES, "gitlab-push.json"), "utf8")) as Record<string, unknown>;
  return fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": token },
    body: JSON.stringify({ ...payload, ref: "refs/heads/main", before: "0".repeat(40), after, checkout_sha: after }),
  });
}

/** Collects a stream's lines as they arrive and lets a test wait for one. */
export class Lines {
  readonly lines: string[] = [];
  #ended = false;
  #waiters: Array<() => void> = [];

  constructor(stream: ReadableStream<Uint8Array>) {
    void this.#pump(stream);
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of stream) {
      buffer += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        this.lines.push(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        this.#wake();
      }
    }
    if (buffer) this.lines.push(buffer);
    this.#ended = true;
    this.#wake();
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  /** The first line from index `from` on that matches, waiting up to timeoutMs for it. */
  async waitFor(match: (line: string) => boolean, timeoutMs: number, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(from).find(match);
      if (found !== undefined) return found;
      if (this.#ended) throw new Error(`stream ended without a matching line; lines:\n${this.lines.join("\n")}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching line within ${timeoutMs} ms; lines so far:\n${this.lines.join("\n")}`);
      await Promise.race([new Promise<void>((wake) => this.#waiters.push(wake)), Bun.sleep(Math.min(left, 200))]);
    }
  }
}

export interface NotifyMessage {
  /** The sender's PID as the kernel reports it (SCM_CREDENTIALS), which systemd's NotifyAccess= checks. */
  pid: number;
  message: string;
}

/** A real AF_UNIX datagram socket at `address` (a path or @abstract), as systemd's NOTIFY_SOCKET. */
export interface NotifyListener {
  readonly messages: NotifyMessage[];
  /** Resolves with the first message (from index `from` on) that satisfies `match`. */
  waitFor(match: (m: NotifyMessage) => boolean, timeoutMs: number, from?: number): Promise<NotifyMessage>;
  stop(): Promise<void>;
}

export async function startNotifyListener(address: string): Promise<NotifyListener> {
  const proc: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn(["python3", join(import.meta.dir, "notify-listener.py"), address], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const lines = new Lines(proc.stdout);
  await lines.waitFor((line) => line.startsWith('{"bound"'), 10_000).catch(async (err) => {
    proc.kill();
    throw new Error(`${(err as Error).message}\n${await proc.stderr.text()}`);
  });
  const parsed = () => lines.lines.slice(1).map((line) => JSON.parse(line) as NotifyMessage);
  return {
    get messages() {
      return parsed();
    },
    async waitFor(match, timeoutMs, from = 0) {
      const line = await lines.waitFor((l) => !l.startsWith('{"bound"') && match(JSON.parse(l) as NotifyMessage), timeoutMs, from + 1);
      return JSON.parse(line) as NotifyMessage;
    },
    async stop() {
      proc.kill();
      await proc.exited;
    },
  };
}
