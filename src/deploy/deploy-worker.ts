/**
 * The deploy thread's entry point (see deploy-thread.ts): runs each deploy it
 * is sent through the ordinary pipeline and reports back log lines, phases,
 * the fetched commit, and the outcome or the error. Several deploys (of
 * different targets) may run here at once, as they would on the main thread.
 */
import type { Logger } from "../log.ts";
import type { HookRun } from "../hooks/run-hook.ts";
import { runDeploy } from "./pipeline.ts";
import { BACKGROUND_NICE, lowerPoolPriority, lowerThreadPriority } from "../util/thread-priority.ts";
import { decodeTarget, encodeError, type FromWorker, type ToWorker } from "./thread-messages.ts";

declare const self: Worker;

// Under CPU contention the scheduler then prefers the thread answering
// webhooks: a deploy's CPU work waits a little, an HTTP answer does not.
// (Hooks started from here inherit it, as children of a niced deploy would.)
lowerThreadPriority(BACKGROUND_NICE);

const send = (message: FromWorker) => self.postMessage(message);

self.onmessage = async ({ data }: MessageEvent<ToWorker>) => {
  const { job, target, request, id } = data;
  lowerPoolPriority(BACKGROUND_NICE);
  const line = (level: "info" | "warn" | "error") => (msg: string, fields?: Record<string, unknown>) => send({ type: "log", job, level, msg, fields });
  const log: Logger = { info: line("info"), warn: line("warn"), error: line("error") };
  const hooks: HookRun[] = [];
  try {
    const outcome = await runDeploy(decodeTarget(target), request, {
      id,
      log,
      hooks,
      onPhase: (phase) => send({ type: "phase", job, phase }),
      onFetched: (commit) => send({ type: "fetched", job, commit }),
    });
    send({ type: "done", job, outcome, hooks });
  } catch (err) {
    send({ type: "failed", job, error: encodeError(err), hooks });
  }
};
