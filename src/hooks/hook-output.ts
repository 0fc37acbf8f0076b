import { boundHookOutput } from "../state/history.ts";
import { describeExit } from "./hook-error.ts";
import type { HookRun } from "./run-hook.ts";

/** Every run's output under a one-line header, bounded for the deploy record (history, /deploys/ID). */
export function combinedHookOutput(runs: readonly HookRun[]): string | undefined {
  if (runs.length === 0) return undefined;
  return boundHookOutput(runs.map((run) => `--- ${run.hook} (${run.path}) ${describeExit(run)}\n${run.output}`).join("\n"));
}
