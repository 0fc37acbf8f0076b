/**
 * How often and how patiently a deploy that failed for a passing reason (see
 * failure.ts) is tried again: the delay doubles from `initialDelayMs` up to
 * `maxDelayMs`, for at most `attempts` tries in all.
 */
export interface RetryPolicy {
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

/** Four tries: at once, then after 1 s, 2 s and 4 s. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, initialDelayMs: 1000, maxDelayMs: 4000 };

/** The wait after failed attempt number `attempt` (1-based). */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.initialDelayMs * 2 ** (attempt - 1), policy.maxDelayMs);
}

/**
 * A wait that can be cut short (by a newer push, or a shutdown): `wait`
 * resolves "elapsed" after the delay, or with the reason given to `interrupt`.
 */
export function interruptibleDelay<Why extends string>(ms: number): { wait: Promise<"elapsed" | Why>; interrupt(why: Why): void } {
  let interrupt!: (why: Why) => void;
  const wait = new Promise<"elapsed" | Why>((resolve) => {
    const timer = setTimeout(() => resolve("elapsed"), ms);
    interrupt = (why) => {
      clearTimeout(timer);
      resolve(why);
    };
  });
  return { wait, interrupt };
}
