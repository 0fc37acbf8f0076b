/**
 * Webhook latency while a deploy runs: a separate process (load.ts) sends
 * webhooks at a fixed rate to a running daemon while it cold-deploys the big
 * pack. Rounds alternate with a reference: the same load on an idle daemon
 * while native `git clone` fetches the same pack from the same server, which
 * shows what this machine's 2 cores give any process under that much git
 * traffic. Samples of all rounds of a kind are pooled before taking p99.
 */
import { join } from "node:path";
import { rm } from "node:fs/promises";
import { deployThroughDaemon, startDaemon } from "./daemon.ts";
import { gitEnv, percentile, run } from "./measure.ts";

export interface LatencyStats {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export interface Latency {
  rate: number;
  rounds: number;
  /** The second before each push or clone, over every round. */
  quiet: LatencyStats;
  /** While hooksd deployed, pooled, and each round's p99 and deploy time. */
  deploy: LatencyStats & { p99s: number[]; ms: number[] };
  /** While native git cloned beside the idle daemon. */
  nativeClone: LatencyStats & { p99s: number[]; ms: number[] };
  /** Requests not answered 200, over everything sent. */
  failed: number;
  total: number;
}

/** [epoch ms when sent, latency ms, status], as load.ts prints them. */
type Sample = [number, number, number];

function stats(samples: Sample[]): LatencyStats {
  const ms = samples.map((s) => s[1]);
  return { n: ms.length, p50: percentile(ms, 50), p99: percentile(ms, 99), max: percentile(ms, 100) };
}

export async function measureLatency(options: { binary: string; url: string; bare: string; root: string; rate: number; rounds: number; expectedMs: number }): Promise<Latency> {
  const { binary, url, bare, root, rate, rounds } = options;
  const head = (await run(["git", "rev-parse", "refs/heads/main"], { cwd: bare })).stdout.trim();
  const seconds = Math.ceil(Math.min(60, (options.expectedMs / 1000) * 1.5 + 4));
  const quiet: Sample[] = [];
  const during = { deploy: [] as Sample[], nativeClone: [] as Sample[] };
  const perRound = { deploy: { p99s: [] as number[], ms: [] as number[] }, nativeClone: { p99s: [] as number[], ms: [] as number[] } };
  let failed = 0;
  let total = 0;

  for (let i = 0; i < rounds; i++) {
    const kinds = i % 2 ? (["nativeClone", "deploy"] as const) : (["deploy", "nativeClone"] as const);
    for (const kind of kinds) {
      const site = join(root, "latency-site");
      const clone = join(root, "latency-clone");
      const stateDir = join(root, "latency-state");
      for (const d of [site, clone, stateDir]) await rm(d, { recursive: true, force: true });
      // In the native rounds the daemon only answers webhooks: nothing is pushed to it.
      const daemon = await startDaemon(binary, { args: ["--repo", site, "--remote", url], stateDir });
      try {
        const load = run([process.execPath, join(import.meta.dir, "load.ts"), daemon.url, String(rate), String(seconds)]);
        // The first second warms up connections; the one before the push is the quiet baseline.
        await Bun.sleep(2000);
        const start = performance.timeOrigin + performance.now();
        if (kind === "deploy") await deployThroughDaemon(daemon, head);
        else await run(["git", "clone", "--quiet", "--depth", "1", url, clone], { env: gitEnv() });
        const end = performance.timeOrigin + performance.now();
        const samples = JSON.parse((await load).stdout) as Sample[];
        const window = samples.filter(([t]) => t >= start && t <= end);
        during[kind].push(...window);
        perRound[kind].p99s.push(stats(window).p99);
        perRound[kind].ms.push(end - start);
        quiet.push(...samples.filter(([t]) => t >= start - 1000 && t < start));
        failed += samples.filter(([, , status]) => status !== 200).length;
        total += samples.length;
      } finally {
        await daemon.stop();
      }
      for (const d of [site, clone, stateDir]) await rm(d, { recursive: true, force: true });
    }
  }
  return {
    rate,
    rounds,
    quiet: stats(quiet),
    deploy: { ...stats(during.deploy), ...perRound.deploy },
    nativeClone: { ...stats(during.nativeClone), ...perRound.nativeClone },
    failed,
    total,
  };
}
