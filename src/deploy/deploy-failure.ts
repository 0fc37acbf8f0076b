import type { HookRun } from "../hooks/run-hook.ts";
import type { DeployState } from "../state/history.ts";

/** A failed deploy as the pipeline hands it to the queue: the cause, the resulting state and the hooks that ran. */
export class DeployFailure extends Error {
  override name = "DeployFailure";
  readonly code: string | undefined;

  constructor(
    cause: unknown,
    readonly state: Extract<DeployState, "failed" | "rolled back">,
    readonly hooks: HookRun[],
    readonly release: string | undefined,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    const code = (cause as { code?: unknown } | undefined)?.code;
    this.code = typeof code === "string" ? code : undefined;
  }
}
