/** Running processes and summarising what they cost. */
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Native git with no user or system config: the same behaviour on every machine. */
export function gitEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: "/nonexistent",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    LC_ALL: "C",
    ...extra,
  };
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  /** Wall-clock milliseconds from spawn to exit. */
  ms: number;
  /** Peak resident set of the process and the children it waited for, in bytes. */
  maxRss: number;
}

let rssFiles = 0;

/**
 * Runs a command to completion; throws unless it exits 0 (or `allowFailure`).
 * Peak RSS comes from GNU time: the rusage Bun reports for its own child
 * counts the RSS of the Bun process it was forked from.
 */
export async function run(cmd: string[], options: { cwd?: string; env?: Record<string, string>; allowFailure?: boolean } = {}): Promise<RunResult> {
  const rssFile = join(tmpdir(), `hooksd-bench-rss-${process.pid}-${rssFiles++}`);
  const start = performance.now();
  const proc = Bun.spawn(["/usr/bin/time", "-q", "-f", "%M", "-o", rssFile, ...cmd], { cwd: options.cwd, env: options.env ?? gitEnv(), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const ms = performance.now() - start;
  if (exitCode !== 0 && !options.allowFailure) throw new Error(`${cmd.join(" ")} exited ${exitCode}:\n${stdout}${stderr}`);
  // GNU time's %M is the peak of the command and the children it waited for, in kilobytes.
  const maxRss = Number((await Bun.file(rssFile).text().catch(() => "")).trim().split("\n").pop()) * 1024;
  await rm(rssFile, { force: true });
  return { stdout, stderr, exitCode, ms, maxRss };
}

export interface Summary {
  median: number;
  min: number;
  n: number;
}

export function summarize(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0] ?? NaN, n: sorted.length };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Resident-set figures of a running process from /proc, in bytes. */
export async function procMemory(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
  const text = await Bun.file(`/proc/${pid}/status`).text().catch(() => undefined);
  if (!text) return undefined;
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}
