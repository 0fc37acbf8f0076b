/**
 * `npm run bench`: hooksd against native git on the same machine, in the same
 * run, each as a real process, runs alternating (hooksd first on even runs,
 * git first on odd ones) so that a noisy neighbour hurts both alike.
 * Results are ratios; bench/RESULTS.md gets the figures and the machine.
 *
 * Environment: BENCH_RUNS (default 5), BENCH_SIZES (default 1000,10000,50000),
 * BENCH_BIG_MB (default 100), BENCH_RATE (default 500 requests/s),
 * BENCH_LATENCY_ROUNDS (default 3), BENCH_DIR
 * (the work directory; default /dev/shm/hooksd-bench where /dev/shm exists,
 * else bench/.work).
 *
 * Why tmpfs by default: on the ext4 disk of the machine this was built on,
 * creating a file took from 20 µs to 750 µs depending on how many files had
 * been created and deleted before (git clone of 10k files: 0.5 s to 5 s from
 * one run to the next), which drowns every ratio. In memory, both sides pay
 * the kernel's real cost of a file; that is stricter for hooksd, whose
 * per-file overhead is then a bigger share.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { startGitServer } from "../test/helpers/git-server.ts";
import { deployThroughDaemon, peakRssDuring, startDaemon } from "./daemon.ts";
import { measureLatency } from "./latency.ts";
import { gitEnv, procMemory, run, summarize, type RunResult } from "./measure.ts";
import { fileSystemType, machineInfo, writeResults, type Row } from "./report.ts";
import { DEFAULT_KEEP } from "../src/config/schema.ts";
import { bigPackRepo, commitChange, smallFilesRepo, type BenchRepo } from "./repos.ts";

const ROOT = join(import.meta.dir, "..");
const WORK = process.env.BENCH_DIR ?? (existsSync("/dev/shm") ? "/dev/shm/hooksd-bench" : join(import.meta.dir, ".work"));
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SIZES = (process.env.BENCH_SIZES ?? "1000,10000,50000").split(",").map(Number);
const BIG_MB = Number(process.env.BENCH_BIG_MB ?? 100);
const RATE = Number(process.env.BENCH_RATE ?? 500);
const LATENCY_ROUNDS = Number(process.env.BENCH_LATENCY_ROUNDS ?? 3);
const CURVE = [1, 10, 100, 1000];

const log = (msg: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

const startMachine = await machineInfo();
log(`building dist/hooksd`);
await run([process.execPath, "build.ts"], { cwd: ROOT, env: { ...process.env } as Record<string, string> });
await mkdir(WORK, { recursive: true });
// A private copy: another engineer's rebuild must not swap the binary mid-run.
const binary = join(WORK, "hooksd");
await copyFile(join(ROOT, "dist/hooksd"), binary);
const hooksdEnv = { PATH: "/nonexistent", HOME: "/nonexistent", LC_ALL: "C" };

const reposRoot = join(WORK, "repos");
const runsRoot = join(WORK, "runs");
await rm(runsRoot, { recursive: true, force: true });
await mkdir(runsRoot, { recursive: true });
log(`generating repositories (cached in ${reposRoot})`);
const repos = new Map<number, BenchRepo>();
for (const size of SIZES) repos.set(size, await smallFilesRepo(reposRoot, size));
const big = await bigPackRepo(reposRoot, BIG_MB);
const server = await startGitServer({ root: reposRoot });

const rows: Row[] = [];
let seed = 1;
let daemons = 0;

interface Sample {
  ms: number;
  rss: number;
  bytes: number;
  timings?: Record<string, number> | undefined;
}

/** Runs a process and attributes to it the bytes the git server sent meanwhile. */
async function measured(cmd: string[], env: Record<string, string>, cwd?: string): Promise<Sample> {
  const before = server.bytesSent;
  const r: RunResult = await run(cmd, { env, ...(cwd ? { cwd } : {}) });
  const done = r.stdout.split("\n").find((l) => l.includes('"deploy succeeded"'));
  const timings = done ? (JSON.parse(done) as { timings?: Record<string, number> }).timings : undefined;
  return { ms: r.ms, rss: r.maxRss, bytes: server.bytesSent - before, timings };
}

/** `RUNS` pairs, alternating which side goes first. */
async function alternate(prepare: (i: number) => Promise<void>, ours: (i: number) => Promise<Sample>, native: (i: number) => Promise<Sample>) {
  const a: Sample[] = [];
  const b: Sample[] = [];
  for (let i = 0; i < RUNS; i++) {
    await prepare(i);
    if (i % 2 === 0) {
      a.push(await ours(i));
      b.push(await native(i));
    } else {
      b.push(await native(i));
      a.push(await ours(i));
    }
  }
  return { ours: a, native: b };
}

function row(group: string, name: string, metric: "ms" | "rss" | "bytes", ours: Sample[], native: Sample[], target: string, note = ""): void {
  rows.push({ group, name, metric, ours: summarize(ours.map((s) => s[metric])), native: summarize(native.map((s) => s[metric])), target, note });
}

function phaseNote(samples: Sample[]): string {
  const phases = Object.keys(samples[0]?.timings ?? {});
  return phases.map((p) => `${p} ${Math.round(summarize(samples.map((s) => s.timings?.[p] ?? NaN)).median)} ms`).join(", ");
}

const hooksdDeploy = (dir: string, url: string, extra: string[] = []) => measured([binary, "deploy", "--repo", dir, "--remote", url, "--branch", "main", ...extra], hooksdEnv);
const nativeClone = (dir: string, url: string) => measured(["git", "clone", "--quiet", "--depth", "1", url, dir], gitEnv());
const nativeUpdate = (dir: string) => measured(["sh", "-c", "git fetch --quiet --depth 1 origin main && git reset --quiet --hard FETCH_HEAD"], gitEnv(), dir);

/**
 * A cold deploy through a freshly started daemon: from the 202 to the files on
 * disk, with the daemon's peak RSS. `memory` also collects its RSS a second
 * before the push (idle) and a second after the deploy.
 */
async function coldThroughDaemon(dir: string, url: string, bare: string, stateDir: string, memory?: { idle: number[]; afterDeploy: number[] }): Promise<Sample> {
  const daemon = await startDaemon(binary, { args: ["--repo", dir, "--remote", url], stateDir });
  try {
    // As a daemon waits for its first push: started, its deploy thread loaded.
    await Bun.sleep(1000);
    memory?.idle.push((await procMemory(daemon.pid))?.rss ?? NaN);
    const head = (await run(["git", "rev-parse", "refs/heads/main"], { cwd: bare })).stdout.trim();
    const before = server.bytesSent;
    const { result, peak } = await peakRssDuring(daemon.pid, deployThroughDaemon(daemon, head));
    if (memory) {
      await Bun.sleep(1000);
      memory.afterDeploy.push((await procMemory(daemon.pid))?.rss ?? NaN);
    }
    return { ms: result.ms, rss: peak, bytes: server.bytesSent - before, timings: result.line.timings as Record<string, number> };
  } finally {
    await daemon.stop();
  }
}

for (const [size, repo] of repos) {
  const url = server.url(repo.name);
  const label = `${size.toLocaleString("en")} files`;
  log(`${label}: cold deploys through the daemon, then with the deploy command`);
  const ourDir = (i: number) => join(runsRoot, `ours-${size}-${i}`);
  const nativeDir = (i: number) => join(runsRoot, `native-${size}-${i}`);
  const cold = await alternate(
    async (i) => {
      // Only the last pair is kept, as the starting point of the incremental runs.
      if (i > 0) await Promise.all([rm(ourDir(i - 1), { recursive: true, force: true }), rm(nativeDir(i - 1), { recursive: true, force: true })]);
    },
    (i) => coldThroughDaemon(ourDir(i), url, repo.bare, join(runsRoot, `cold-state-${size}-${i}`)),
    (i) => nativeClone(nativeDir(i), url),
  );
  row(label, "cold deploy, daemon 202 → on disk: time", "ms", cold.ours, cold.native, "≤ 1.5×", phaseNote(cold.ours));
  row(label, "cold deploy: daemon peak RSS (VmHWM) vs git clone maxrss", "rss", cold.ours, cold.native, "");
  row(label, "cold deploy: bytes received", "bytes", cold.ours, cold.native, "");
  // For comparison: the same with the `hooksd deploy` command, which also pays the binary's start-up.
  const cliDir = (i: number) => join(runsRoot, `cli-${size}-${i}`);
  const cliNativeDir = (i: number) => join(runsRoot, `cli-native-${size}-${i}`);
  const coldCli = await alternate(
    async (i) => void (await Promise.all([rm(cliDir(i - 1), { recursive: true, force: true }), rm(cliNativeDir(i - 1), { recursive: true, force: true })])),
    (i) => hooksdDeploy(cliDir(i), url),
    (i) => nativeClone(cliNativeDir(i), url),
  );
  await Promise.all([rm(cliDir(RUNS - 1), { recursive: true, force: true }), rm(cliNativeDir(RUNS - 1), { recursive: true, force: true })]);
  row(label, "cold deploy, `hooksd deploy` command: time", "ms", coldCli.ours, coldCli.native, "", phaseNote(coldCli.ours));
  row(label, "cold deploy, `hooksd deploy` command: peak RSS", "rss", coldCli.ours, coldCli.native, "");
  const ours = ourDir(RUNS - 1);
  const native = nativeDir(RUNS - 1);

  // What the target measures: a push through the running daemon, from its 202 to the files on disk.
  const counts = size === 10_000 ? [3, ...CURVE] : [3];
  await throughDaemon(["--repo", ours], async (deploy) => {
    for (const count of counts) {
      log(`${label}: incremental ${count}-file change through the daemon`);
      const inc = await alternate(async () => void (await commitChange(repo, count, seed++)), deploy, () => nativeUpdate(native));
      const name = `incremental ${count}-file change, in place`;
      row(label, `${name}: time`, "ms", inc.ours, inc.native, count === 3 ? "≤ 1.0×" : "curve", phaseNote(inc.ours));
      row(label, `${name}: bytes received`, "bytes", inc.ours, inc.native, count === 3 ? "≤ 1.5×" : "curve");
    }
  });

  log(`${label}: atomic strategy through the daemon`);
  const atomicDir = join(runsRoot, `atomic-${size}`);
  await hooksdDeploy(atomicDir, url, ["--strategy", "atomic"]);
  await throughDaemon(["--repo", atomicDir, "--strategy", "atomic"], async (deploy) => {
    // A release is recycled only once one is due for pruning: the first DEFAULT_KEEP deploys copy.
    const warmUp: Sample[] = [];
    for (let i = 0; i < DEFAULT_KEEP; i++) {
      await commitChange(repo, 3, seed++);
      warmUp.push(await deploy());
    }
    const inc = await alternate(async () => void (await commitChange(repo, 3, seed++)), deploy, () => nativeUpdate(native));
    row(label, "incremental 3-file change, atomic: time", "ms", inc.ours, inc.native, "≤ 1.0×", phaseNote(inc.ours));
    row(label, `the first ${DEFAULT_KEEP} atomic deploys (nothing to recycle yet): time`, "ms", warmUp, inc.native, "", phaseNote(warmUp));
  });

  if (size === 10_000) {
    // For comparison only: the CLI pays the binary's start-up (40–200 ms here) on every deploy.
    log(`${label}: incremental 3-file change with the hooksd deploy command`);
    const cli = await alternate(async () => void (await commitChange(repo, 3, seed++)), () => hooksdDeploy(ours, url), () => nativeUpdate(native));
    row(label, "incremental 3-file change, `hooksd deploy` command: time", "ms", cli.ours, cli.native, "", phaseNote(cli.ours));
    row(label, "incremental 3-file change, `hooksd deploy` command: peak RSS", "rss", cli.ours, cli.native, "");
  }

  /** Runs `work` against a daemon serving `args`; `deploy` pushes the remote's newest commit and times it. */
  async function throughDaemon(args: string[], work: (deploy: () => Promise<Sample>) => Promise<void>): Promise<void> {
    const daemon = await startDaemon(binary, { args: [...args, "--remote", url], stateDir: join(runsRoot, `state-${size}-${daemons++}`) });
    try {
      await work(async () => {
        const commit = (await run(["git", "rev-parse", "refs/heads/main"], { cwd: repo.bare })).stdout.trim();
        const before = server.bytesSent;
        const { ms, line } = await deployThroughDaemon(daemon, commit);
        return { ms, rss: 0, bytes: server.bytesSent - before, timings: line.timings as Record<string, number> };
      });
    } finally {
      await daemon.stop();
    }
  }
  await rm(atomicDir, { recursive: true, force: true });
  await Promise.all([rm(ours, { recursive: true, force: true }), rm(native, { recursive: true, force: true })]);
}

// The memory case: a cold deploy of a ~100 MB pack through the daemon.
const bigUrl = server.url(big.name);
const bigLabel = `${BIG_MB} MB pack (incompressible)`;
log(`${bigLabel}: cold deploys through the daemon`);
const idle: number[] = [];
const afterDeploy: number[] = [];
const bigRuns = await alternate(
  async (i) => {
    await rm(join(runsRoot, `big-ours-${i - 1}`), { recursive: true, force: true });
    await rm(join(runsRoot, `big-native-${i - 1}`), { recursive: true, force: true });
  },
  (i) => coldThroughDaemon(join(runsRoot, `big-ours-${i}`), bigUrl, big.bare, join(runsRoot, `big-state-${i}`), { idle, afterDeploy }),
  (i) => nativeClone(join(runsRoot, `big-native-${i}`), bigUrl),
);
row(bigLabel, "cold deploy, daemon 202 → on disk: time", "ms", bigRuns.ours, bigRuns.native, "≤ 1.5×", phaseNote(bigRuns.ours));
row(bigLabel, "cold deploy: daemon peak RSS (VmHWM) vs git clone maxrss", "rss", bigRuns.ours, bigRuns.native, "≤ 150 MB");
const idleSummary = summarize(idle);
const afterSummary = summarize(afterDeploy);

log(`webhook latency at ${RATE} requests/s: ${LATENCY_ROUNDS} cold deploys of the big pack, alternating with native clones of it`);
const latency = await measureLatency({
  binary,
  url: bigUrl,
  bare: big.bare,
  root: runsRoot,
  rate: RATE,
  rounds: LATENCY_ROUNDS,
  expectedMs: summarize(bigRuns.ours.map((s) => s.ms)).median,
});

await server.stop();
const endMachine = await machineInfo();
await writeResults(join(import.meta.dir, "RESULTS.md"), {
  start: startMachine,
  end: endMachine,
  workDir: { path: WORK, fsType: await fileSystemType(WORK) },
  runs: RUNS,
  rows,
  idleRss: idleSummary,
  afterDeployRss: afterSummary,
  latency,
  bigMb: BIG_MB,
});
await Bun.write(join(WORK, "results.json"), JSON.stringify({ startMachine, endMachine, rows, idle, afterDeploy, latency }, null, 2));
log("wrote bench/RESULTS.md");
await rm(runsRoot, { recursive: true, force: true });
