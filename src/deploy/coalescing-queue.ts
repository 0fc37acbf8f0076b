/**
 * Runs one item at a time and keeps at most one waiting: a newer item replaces
 * the waiting one (which is handed to `onSuperseded` with its replacement). A burst of pushes thus
 * becomes the running deploy plus one deploy of the newest push, and the newest
 * push is never lost.
 */
export interface CoalescingQueue<T> {
  push(item: T): void;
  /** Resolves once nothing runs or waits (after close(): once nothing runs). */
  idle(): Promise<void>;
  /** Starts nothing more: the running item finishes, the waiting one stays where it is. */
  close(): void;
  readonly busy: boolean;
}

export function createCoalescingQueue<T>(run: (item: T) => Promise<void>, onSuperseded: (item: T, replacement: T) => void): CoalescingQueue<T> {
  let waiting: T | undefined;
  let draining: Promise<void> | undefined;
  let closed = false;

  async function drain(): Promise<void> {
    while (waiting !== undefined && !closed) {
      const item = waiting;
      waiting = undefined;
      // `run` records its own failures. Promise.try turns a run that throws
      // before returning a promise into a rejection: thrown straight out of
      // drain(), it left `draining` set forever, and every later item was
      // queued behind a drain that would never run it. (It still starts `run`
      // synchronously, and the await always yields, so `draining` is assigned
      // before the line below clears it.)
      await Promise.try(run, item).catch(() => {});
    }
    draining = undefined;
  }

  return {
    push(item) {
      // The new item is queued before the callback runs: if the callback
      // throws, the caller sees the error but the newest item is not lost.
      const replaced = waiting;
      waiting = item;
      if (!closed) draining ??= drain();
      if (replaced !== undefined) onSuperseded(replaced, item);
    },
    close() {
      closed = true;
    },
    idle: () => draining ?? Promise.resolve(),
    get busy() {
      return draining !== undefined;
    },
  };
}
