/** `hooksd serve` as a real process: started, sent GitLab deliveries, watched through its log. */
import type { Subprocess } from "bun";
import { closedPort, gitlabPushBody, gitlabPushHeaders } from "../test/cli/support.ts";
import { procMemory } from "./measure.ts";

export const SECRET = "bench-gitlab-token";
const ZERO = "0".repeat(40);

type LogLine = Record<string, unknown> & { msg?: string };

export interface Daemon {
  url: string;
  pid: number;
  /** Resolves with the first log line after this call for which `match` is true. */
  waitFor(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends a push of `commit` to main; resolves when the 202 has arrived, with its time. */
  push(commit: string): Promise<{ acceptedAt: number; deploy: string }>;
  stop(): Promise<void>;
}

/** `args` name the target: --repo, --remote and any other `serve` flags. */
export async function startDaemon(binary: string, options: { args: string[]; stateDir: string }): Promise<Daemon> {
  const port = await closedPort();
  const proc: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn(
    [binary, "serve", ...options.args, "--branch", "main", "--listen", `127.0.0.1:${port}`, "--state-dir", options.stateDir],
    { env: { PATH: "/nonexistent", HOME: options.stateDir, HOOKSD_SECRET: SECRET }, stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  const waiters: Array<{ match: (l: LogLine) => boolean; done: (l: LogLine) => void }> = [];
  const stderr = new Response(proc.stderr).text();
  void (async () => {
    let pending = "";
    for await (const chunk of proc.stdout) {
      pending += Buffer.from(chunk).toString();
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const text = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          continue;
        }
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (waiters[i]!.match(line)) waiters.splice(i, 1)[0]!.done(line);
        }
      }
    }
  })();

  const url = `http://127.0.0.1:${port}/`;
  const daemon: Daemon = {
    url,
    pid: proc.pid,
    waitFor(match, timeoutMs = 600_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`daemon: no matching log line within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ match, done: (l) => (clearTimeout(timer), resolve(l)) });
        void proc.exited.then(async (code) => reject(new Error(`daemon exited ${code}: ${await stderr}`)));
      });
    },
    async push(commit) {
      const res = await fetch(url, { method: "POST", headers: gitlabPushHeaders(SECRET), body: await gitlabPushBody("refs/heads/main", ZERO, commit) });
      const acceptedAt = performance.now();
      const body = (await res.json()) as { deploy?: string };
      if (res.status !== 202 || !body.deploy) throw new Error(`daemon answered ${res.status}: ${JSON.stringify(body)}`);
      return { acceptedAt, deploy: body.deploy };
    },
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
  await daemon.waitFor((l) => l.msg === "listening", 30_000);
  return daemon;
}

/** Pushes `commit`, waits for its deploy to finish; the time runs from the 202 to the "deploy succeeded" line. */
export async function deployThroughDaemon(daemon: Daemon, commit: string): Promise<{ ms: number; line: LogLine }> {
  const finished = daemon.waitFor((l) => l.msg === "deploy succeeded" || l.msg === "deploy failed");
  const { acceptedAt } = await daemon.push(commit);
  const line = await finished;
  const ms = performance.now() - acceptedAt;
  if (line.msg !== "deploy succeeded") throw new Error(`deploy failed: ${JSON.stringify(line)}`);
  return { ms, line };
}

/** Samples the daemon's VmHWM (peak RSS) every 50 ms until `work` settles. */
export async function peakRssDuring<T>(pid: number, work: Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = 0;
  let settled = false;
  const sampler = (async () => {
    while (!settled) {
      const mem = await procMemory(pid);
      if (mem) peak = Math.max(peak, mem.hwm);
      await Bun.sleep(50);
    }
  })();
  try {
    const result = await work;
    const mem = await procMemory(pid);
    if (mem) peak = Math.max(peak, mem.hwm);
    return { result, peak };
  } finally {
    settled = true;
    await sampler;
  }
}
