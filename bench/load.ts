/**
 * Open-loop webhook load, run as its own process: `bun bench/load.ts URL RATE SECONDS`.
 * Sends signed GitLab pushes of a branch the target does not deploy (answered
 * 200 "ignored" after full verification and parsing), at a fixed rate whether
 * or not earlier answers came back, and prints one JSON array of
 * [epoch ms when sent, latency ms, status] per request.
 */
import { gitlabPushBody, gitlabPushHeaders } from "../test/cli/support.ts";
import { SECRET } from "./daemon.ts";

const [url, rateArg, secondsArg] = process.argv.slice(2);
if (!url || !rateArg || !secondsArg) {
  console.error("usage: bun bench/load.ts URL RATE SECONDS");
  process.exit(2);
}
const rate = Number(rateArg);
const total = Math.round(rate * Number(secondsArg));
const body = await gitlabPushBody("refs/heads/bench-not-deployed", "0".repeat(40), "1".repeat(40));
const headers = gitlabPushHeaders(SECRET);

const results: Array<[number, number, number]> = [];
const inflight: Promise<void>[] = [];
const start = performance.now();
let sent = 0;
while (sent < total) {
  const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
  for (; sent < due; sent++) {
    const t0 = performance.now();
    inflight.push(
      fetch(url, { method: "POST", headers, body }).then(
        async (res) => {
          await res.arrayBuffer();
          results.push([performance.timeOrigin + t0, performance.now() - t0, res.status]);
        },
        () => void results.push([performance.timeOrigin + t0, performance.now() - t0, 0]),
      ),
    );
  }
  await Bun.sleep(1);
}
await Promise.all(inflight);
process.stdout.write(JSON.stringify(results));
