/**
 * Requests `url` until it answers 2xx or `timeoutSeconds` pass. Returns
 * undefined when healthy, else what the last attempt saw.
 */
export async function checkHealth(url: string, timeoutSeconds: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let problem = "no answer";
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())) });
      await response.body?.cancel();
      if (response.status >= 200 && response.status < 300) return undefined;
      problem = `HTTP ${response.status}`;
    } catch (err) {
      problem = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError") ? "timed out" : String((err as Error).message ?? err);
    }
    await Bun.sleep(Math.min(250, Math.max(0, deadline - Date.now())));
  }
  return `${url} gave no 2xx answer within ${timeoutSeconds} s (last: ${problem})`;
}
