/**
 * For loops of many short synchronous steps (an lstat, a small write): the
 * returned function gives the event loop a turn, so webhooks and timers run,
 * once `everyMs` have passed since it last did, and costs nothing otherwise.
 */
export function createYielder(everyMs = 4): () => Promise<void> {
  let last = performance.now();
  return async function maybeYield() {
    if (performance.now() - last < everyMs) return;
    await new Promise((resolve) => setImmediate(resolve));
    last = performance.now();
  };
}
