import type { ProviderName } from "../providers/push-event.ts";

export type DeployState = "queued" | "running" | "succeeded" | "failed" | "superseded";

export type Phase = "fetch" | "checkout";

export interface DeployRecord {
  id: string;
  target: string;
  provider: ProviderName | undefined;
  deliveryId: string | undefined;
  ref: string;
  /** The pushed commit, or undefined for a manual deploy of the ref's tip until it is fetched. */
  commit: string | undefined;
  /** The commit deployed before this one. */
  previous: string | undefined;
  state: DeployState;
  error: string | undefined;
  queuedAt: string;
  startedAt: string | undefined;
  finishedAt: string | undefined;
  /** Milliseconds per phase. */
  timings: Partial<Record<Phase, number>>;
}

/**
 * Where deploy records live. Kept in memory for now; the same interface is
 * what a persistent store (bun:sqlite under the state dir) implements.
 */
export interface History {
  add(record: DeployRecord): void;
  update(id: string, patch: Partial<DeployRecord>): DeployRecord;
  get(id: string): DeployRecord | undefined;
  latest(target: string): DeployRecord | undefined;
}

export function createMemoryHistory(limit = 1000): History {
  const records = new Map<string, DeployRecord>();
  return {
    add(record) {
      records.set(record.id, record);
      // Maps iterate in insertion order: the first key is the oldest record.
      if (records.size > limit) records.delete(records.keys().next().value!);
    },
    update(id, patch) {
      const record = { ...records.get(id)!, ...patch };
      records.set(id, record);
      return record;
    },
    get: (id) => records.get(id),
    latest(target) {
      let found: DeployRecord | undefined;
      for (const record of records.values()) if (record.target === target) found = record;
      return found;
    },
  };
}
