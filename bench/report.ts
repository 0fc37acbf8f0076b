/** The machine a run happened on, and bench/RESULTS.md. */
import { cpus, loadavg, totalmem } from "node:os";
import { run, type Summary } from "./measure.ts";

export interface Machine {
  time: string;
  nproc: number;
  memoryGiB: number;
  cpu: string;
  kernel: string;
  bun: string;
  git: string;
  load: string;
}

export async function machineInfo(): Promise<Machine> {
  const cpuinfo = await Bun.file("/proc/cpuinfo").text().catch(() => "");
  return {
    time: new Date().toISOString(),
    nproc: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    kernel: (await run(["uname", "-srm"])).stdout.trim(),
    bun: Bun.version,
    git: (await run(["git", "--version"])).stdout.trim(),
    load: loadavg().map((l) => l.toFixed(2)).join(" "),
  };
}

/** The type of the file system `path` lives on: the longest mount point of /proc/mounts that contains it. */
export async function fileSystemType(path: string): Promise<string> {
  const mounts = (await Bun.file("/proc/mounts").text().catch(() => ""))
    .split("\n")
    .map((line) => line.split(" "))
    .filter((f) => f.length >= 3 && (path === f[1] || path.startsWith(f[1] === "/" ? "/" : `${f[1]}/`)));
  const best = mounts.sort((a, b) => b[1]!.length - a[1]!.length)[0];
  return best ? `${best[2]} (${best[0]} on ${best[1]})` : "unknown";
}

export interface Row {
  group: string;
  name: string;
  metric: "ms" | "rss" | "bytes";
  ours: Summary;
  native: Summary;
  target: string;
  note: string;
}

import type { Latency, LatencyStats } from "./latency.ts";

export interface Results {
  start: Machine;
  /** Where the repositories, checkouts and clones lived, and that file system's type. */
  workDir: { path: string; fsType: string };
  end: Machine;
  runs: number;
  rows: Row[];
  idleRss: Summary;
  afterDeployRss: Summary;
  latency: Latency;
  bigMb: number;
}

function format(metric: Row["metric"], value: number): string {
  if (!Number.isFinite(value)) return "–";
  if (metric === "ms") return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
  if (metric === "rss") return `${Math.round(value / 2 ** 20)} MB`;
  return value >= 2 ** 20 ? `${(value / 2 ** 20).toFixed(2)} MiB` : `${(value / 1024).toFixed(1)} KiB`;
}

const cell = (metric: Row["metric"], s: Summary) => `${format(metric, s.median)} (${format(metric, s.min)})`;
const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : "–");

const ms = (v: number) => `${v.toFixed(2)} ms`;
const seconds = (values: number[]) => values.map((v) => `${(v / 1000).toFixed(1)} s`).join(", ");

function latencyRow(window: string, s: LatencyStats, p99s?: number[]): string {
  return `| ${window} | ${s.n} | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(s.max)} | ${p99s ? p99s.map(ms).join(", ") : ""} |`;
}

export async function writeResults(path: string, r: Results): Promise<void> {
  const lines: string[] = [];
  const machine = r.start;
  lines.push(
    "# Benchmark results",
    "",
    "Written by `npm run bench` (bench/run.ts); see docs/performance.md for what the figures mean and how hooksd gets there.",
    "Every figure is from one run of the benchmark on this machine, hooksd and native git alternating",
    `(${r.runs} runs per case; hooksd first on even runs, git first on odd ones). Cells are **median (min)**;`,
    "the ratio is hooksd's median over git's median. Lower is better.",
    "",
    "## Machine",
    "",
    `- ${machine.nproc} CPUs: ${machine.cpu}; ${machine.memoryGiB} GiB memory; ${machine.kernel}`,
    `- bun ${machine.bun}; ${machine.git}`,
    `- run from ${r.start.time} to ${r.end.time}; load average at start ${r.start.load}, at end ${r.end.load}`,
    `- work directory (served repositories, deploy targets, git's clones): ${r.workDir.path}, on ${r.workDir.fsType}`,
    "- The machine is shared: other engineers may run test suites on the same 2 cores, so absolute",
    "  times are noisy (see the min column); only the same-run ratios are meaningful.",
    "",
  );
  for (const group of [...new Set(r.rows.map((row) => row.group))]) {
    lines.push(`## ${group}`, "", "| case | hooksd | native git | ratio | target | hooksd phases (median) |", "|---|---|---|---|---|---|");
    for (const row of r.rows.filter((x) => x.group === group)) {
      lines.push(`| ${row.name} | ${cell(row.metric, row.ours)} | ${cell(row.metric, row.native)} | ${ratio(row.ours.median, row.native.median)} | ${row.target} | ${row.note} |`);
    }
    lines.push("");
  }
  lines.push(
    "## Daemon",
    "",
    `- idle RSS of \`hooksd serve\` (1 s after "listening"): median ${format("rss", r.idleRss.median)}, min ${format("rss", r.idleRss.min)} (target ≤ 60 MB)`,
    `- RSS 1 s after the ${r.bigMb} MB cold deploy finished: median ${format("rss", r.afterDeployRss.median)}`,
    `- webhook latency at ${r.latency.rate} requests/s on loopback: open-loop, signed GitLab deliveries of a branch not deployed`,
    `  (verified and parsed, answered 200), sent over keep-alive sockets by a separate Bun process (bench/load.ts);`,
    `  ${r.latency.rounds} rounds, each a freshly started daemon, samples pooled per window; ${r.latency.total} requests, ${r.latency.failed} not answered 200:`,
    "",
    "| window | requests | p50 | p99 | max | p99 of each round |",
    "|---|---|---|---|---|---|",
    latencyRow("the second before each push or clone", r.latency.quiet),
    latencyRow(`during hooksd's cold deploy of the ${r.bigMb} MB pack (${seconds(r.latency.deploy.ms)})`, r.latency.deploy, r.latency.deploy.p99s),
    latencyRow(`reference: during native \`git clone --depth 1\` of it, daemon idle (${seconds(r.latency.nativeClone.ms)})`, r.latency.nativeClone, r.latency.nativeClone.p99s),
    "",
    `Target: p99 ≤ 5 ms during a deploy.`,
    "",
  );
  await Bun.write(path, lines.join("\n"));
}
