/**
 * Helpers for the systemd tests: the compiled executable, a real notify
 * socket listener (python3, as systemd's stand-in), a GitLab delivery.
 */
import type { Subprocess } from "bun";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { LineCollector } from "../cli/support.ts";

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
  const lines = new LineCollector(proc.stdout);
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
