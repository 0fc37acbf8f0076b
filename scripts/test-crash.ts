/**
 * Long crash runs: `npm run test:crash -- --trials N [--seed S]` runs the
 * crash harness (test/crash) with N kills per strategy instead of 50.
 */
import { parseArgs } from "node:util";

const usage = "usage: npm run test:crash -- [--trials N] [--seed S] [--verbose]";
let values: { trials?: string; seed?: string; verbose?: boolean };
try {
  ({ values } = parseArgs({ options: { trials: { type: "string" }, seed: { type: "string" }, verbose: { type: "boolean" } } }));
} catch (err) {
  console.error(`${(err as Error).message}\n${usage}`);
  process.exit(2);
}
const env: Record<string, string> = { ...(process.env as Record<string, string>) };
for (const [flag, name, min] of [["trials", "HOOKSD_CRASH_TRIALS", 1], ["seed", "HOOKSD_CRASH_SEED", Number.MIN_SAFE_INTEGER]] as const) {
  const value = values[flag];
  if (value === undefined) continue;
  if (!/^-?\d+$/.test(value) || Number(value) < min) {
    console.error(`--${flag} must be an integer${flag === "trials" ? " of at least 1" : ""}, got ${JSON.stringify(value)}\n${usage}`);
    process.exit(2);
  }
  env[name] = value;
}
if (values.verbose) env.HOOKSD_CRASH_VERBOSE = "1";
// No per-test timeout: the test sets its own from the number of trials.
const proc = Bun.spawn([process.execPath, "test", "test/crash"], { env, stdio: ["inherit", "inherit", "inherit"] });
process.exit(await proc.exited);
