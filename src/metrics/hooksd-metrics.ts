import type { DeployRecord, History } from "../state/history.ts";
import { createRegistry } from "./registry.ts";

/** Seconds; deploys range from a no-op fetch to a large first clone. */
const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** What `GET /metrics` exposes. Counters start at zero with each process, as Prometheus expects. */
export function createMetrics() {
  const registry = createRegistry();
  const deliveries = registry.counter("hooksd_deliveries_total", "Webhook deliveries received, by provider and answer status.");
  const deploys = registry.counter("hooksd_deploys_total", "Deploys that reached each state, by target.");
  const duration = registry.histogram("hooksd_deploy_duration_seconds", "Time from a deploy's start to its end (succeeded or failed), by target.", DURATION_BUCKETS);
  const lastSuccess = registry.gauge("hooksd_last_success_timestamp_seconds", "Unix time at which the target's last successful deploy finished.");

  // Durations only of deploys this process ran: a deploy interrupted by a
  // crash is closed at the next start, and its "duration" would span the outage.
  const ranHere = new Set<string>();

  function onRecord(record: DeployRecord): void {
    deploys.inc({ target: record.target, state: record.state });
    if (record.state === "running") ranHere.add(record.id);
    if (record.state !== "succeeded" && record.state !== "failed") return;
    if (ranHere.delete(record.id) && record.startedAt && record.finishedAt) {
      duration.observe({ target: record.target }, (Date.parse(record.finishedAt) - Date.parse(record.startedAt)) / 1000);
    }
    if (record.state === "succeeded" && record.finishedAt) lastSuccess.set({ target: record.target }, Date.parse(record.finishedAt) / 1000);
  }

  return {
    delivery(provider: string, status: number): void {
      deliveries.inc({ provider, status: String(status) });
    },

    /**
     * Wraps a history so every state change it records is counted; the last
     * success per target is read back from it, so that gauge survives restarts.
     */
    observe(history: History, targets: readonly string[]): History {
      for (const target of targets) {
        const done = history.list({ target, limit: 1000 }).find((r) => r.state === "succeeded");
        if (done?.finishedAt) lastSuccess.set({ target }, Date.parse(done.finishedAt) / 1000);
      }
      return {
        ...history,
        add(record) {
          history.add(record);
          onRecord(record);
        },
        update(id, patch) {
          const before = history.get(id)?.state;
          const record = history.update(id, patch);
          if (record.state !== before) onRecord(record);
          return record;
        },
      };
    },

    render: () => registry.render(),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
