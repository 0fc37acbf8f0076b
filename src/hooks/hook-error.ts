import type { HookRun } from "./run-hook.ts";

/** Shown in a failed deploy's error; the whole (bounded) output stays in the hook's record. */
const ERROR_OUTPUT_CHARS = 4096;

/** A hook whose failure fails the deploy (pre-deploy), with a stable code. */
export class HookError extends Error {
  readonly code = "HOOK_FAILED";
  override name = "HookError";

  constructor(readonly run: HookRun) {
    const output = run.output.length > ERROR_OUTPUT_CHARS ? `…${run.output.slice(-ERROR_OUTPUT_CHARS)}` : run.output;
    super(`${run.hook} hook ${describeExit(run)}${output.trim() ? `:\n${output.trimEnd()}` : " (no output)"}`);
  }
}

export function describeExit(run: HookRun): string {
  if (run.timedOut) return `timed out after ${Math.round(run.durationMs / 1000)} s and was killed`;
  if (run.signal) return `was killed by ${run.signal}`;
  if (run.exitCode === null) return "could not be started";
  return `exited with status ${run.exitCode}`;
}
