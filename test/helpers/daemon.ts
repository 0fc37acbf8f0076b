/**
 * A real hooksd daemon for tests: `bun src/cli.ts serve` as its own process,
 * listening on a free loopback port, with its JSON log lines collected.
 */
import { readFile } from "node:fs/promises";
import { cleanEnv, CLI_SOURCE, LineCollector } from "../cli/support.ts";

export interface Daemon {
  url: string;
  pid: number;
  /** Every log line so far, parsed. */
  logs(): Array<Record<string, unknown>>;
  /** Resolves with the first log line (seen so far or later) that matches. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Still running (not exited)? */
  alive(): boolean;
  /** VmRSS and VmHWM of the process, in kB, from /proc. */
  memory(): Promise<{ rssKb: number; hwmKb: number }>;
  stop(): Promise<number | null>;
}

export async function startDaemon(args: string[], env: Record<string, string> = {}): Promise<Daemon> {
  const proc = Bun.spawn([process.execPath, CLI_SOURCE, "serve", "--listen", "127.0.0.1:0", ...args], {
    env: cleanEnv(env),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const stdout = new LineCollector(proc.stdout);
  const stderr = new LineCollector(proc.stderr);
  let exited = false;
  void proc.exited.then(() => (exited = true));
  const parse = (line: string) => JSON.parse(line) as Record<string, unknown>;
  const first = await stdout.waitFor((l) => l.includes('"listening"'), 15_000).catch((err: Error) => {
    proc.kill("SIGKILL");
    throw new Error(`${err.message}\nstderr:\n${stderr.text()}`);
  });
  return {
    url: parse(first).url as string,
    pid: proc.pid,
    logs: () => stdout.lines.filter((l) => l.startsWith("{")).map(parse),
    waitForLog: async (match, timeoutMs = 30_000) =>
      parse(await stdout.waitFor((l) => l.startsWith("{") && match(parse(l)), timeoutMs)),
    alive: () => !exited,
    async memory() {
      const status = await readFile(`/proc/${proc.pid}/status`, "utf8");
      const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
      return { rssKb: kb("VmRSS"), hwmKb: kb("VmHWM") };
    },
    async stop() {
      proc.kill("SIGTERM");
      const code = await Promise.race([proc.exited, Bun.sleep(15_000).then(() => "hung" as const)]);
      if (code === "hung") {
        proc.kill("SIGKILL");
        await proc.exited;
        throw new Error(`hooksd did not stop within 15 s of SIGTERM\nstderr:\n${stderr.text()}`);
      }
      await stdout.ended;
      return code;
    },
  };
}
