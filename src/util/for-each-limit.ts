/**
 * Runs `fn` over `items` with at most `limit` calls in flight. After the
 * first failure no further item is started, and the returned promise rejects
 * with that failure only once every call in flight has settled: a caller that
 * cleans up after a failure never races a write still under way.
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const index = next++;
      try {
        await fn(items[index]!, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}
