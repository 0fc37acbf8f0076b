/**
 * Runs one item at a time and keeps at most one waiting: a newer item replaces
 * the waiting one (which is handed to `onSuperseded`). A burst of pushes thus
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

export function createCoalescingQueue<T>(run: (item: T) => Promise<void>, onSuperseded: (item: T) => void): CoalescingQueue<T> {
  let waiting: T | undefined;
  let draining: Promise<void> | undefined;
  let closed = false;

  async function drain(): Promise<void> {
    while (waiting !== undefined && !closed) {
      const item = waiting;
      waiting = undefined;
      await run(item).catch(() => {}); // `run` records its own failures
    }
    draining = undefined;
  }

  return {
    push(item) {
      if (waiting !== undefined) onSuperseded(waiting);
      waiting = item;
      if (!closed) draining ??= drain();
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
