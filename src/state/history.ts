import type { Database } from "bun:sqlite";
import type { HookRun } from "../hooks/run-hook.ts";
import type { ProviderName } from "../providers/push-event.ts";

/** "rolled-back": published, then switched back because the health check failed. */
export type DeployState = "queued" | "running" | "succeeded" | "failed" | "superseded" | "rolled-back";

/** A deploy that has not reached one of these states is still owed work (see Deployer.recover). */
export const UNFINISHED_STATES: readonly DeployState[] = ["queued", "running"];

export type Phase = "fetch" | "checkout" | "hooks" | "publish";

/** Hook output kept per deploy; the tail matters most (where a script failed). */
export const HOOK_OUTPUT_LIMIT = 64 * 1024;

/** Keeps the last HOOK_OUTPUT_LIMIT characters, marking the cut. */
export function boundHookOutput(text: string): string {
  if (text.length <= HOOK_OUTPUT_LIMIT) return text;
  return `[... ${text.length - HOOK_OUTPUT_LIMIT} characters cut ...]\n${text.slice(-HOOK_OUTPUT_LIMIT)}`;
}

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
  /** Why a deploy was superseded (a newer push, or an older commit than the deployed one). */
  reason?: string | undefined;
  queuedAt: string;
  startedAt: string | undefined;
  finishedAt: string | undefined;
  /** Milliseconds per phase. */
  timings: Partial<Record<Phase, number>>;
  /** What the deploy's hooks printed, bounded by boundHookOutput(). */
  hookOutput?: string | undefined;
  /** A `hooksd rollback` rather than a deploy (absent: a deploy). */
  kind?: "deploy" | "rollback";
  /** The atomic strategy's release this record made or switched to. */
  release?: string | undefined;
  /** Every hook run, each with its bounded output. */
  hooks?: HookRun[];
}

/** Where deploy records live: in sqlite under the state dir, or in memory for one-off runs and tests. */
export interface History {
  add(record: DeployRecord): void;
  update(id: string, patch: Partial<DeployRecord>): DeployRecord;
  get(id: string): DeployRecord | undefined;
  latest(target: string): DeployRecord | undefined;
  /** Newest first. */
  list(options?: { target?: string | undefined; limit?: number | undefined }): DeployRecord[];
  /** Records still queued or running, oldest first: what a stop or a crash left owed. */
  unfinished(): DeployRecord[];
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
    list({ target, limit = 100 } = {}) {
      return [...records.values()]
        .filter((r) => target === undefined || r.target === target)
        .reverse()
        .slice(0, limit);
    },
    unfinished: () => [...records.values()].filter((r) => UNFINISHED_STATES.includes(r.state)),
  };
}

/** Records survive restarts; the newest `keep` per target are kept. */
export function createSqliteHistory(db: Database, keep = 1000): History {
  db.run(`CREATE TABLE IF NOT EXISTS deploys (
    id TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    record TEXT NOT NULL
  )`);
  db.run("CREATE INDEX IF NOT EXISTS deploys_by_target ON deploys (target, id)");
  const insert = db.prepare("INSERT INTO deploys (id, target, record) VALUES ($id, $target, $record)");
  const replace = db.prepare("UPDATE deploys SET record = $record WHERE id = $id");
  const byId = db.prepare<{ record: string }, { id: string }>("SELECT record FROM deploys WHERE id = $id");
  // Newest means most recently added, so order by rowid (insertion order),
  // not by id: ids made in the same millisecond differ only in random bits,
  // and a burst of pushes lands in one millisecond.
  const newest = db.prepare<{ record: string }, { target: string | null; limit: number }>(
    "SELECT record FROM deploys WHERE $target IS NULL OR target = $target ORDER BY rowid DESC LIMIT $limit",
  );
  const prune = db.prepare(
    "DELETE FROM deploys WHERE target = $target AND id NOT IN (SELECT id FROM deploys WHERE target = $target ORDER BY rowid DESC LIMIT $keep)",
  );
  const owed = db.prepare<{ record: string }, []>(
    `SELECT record FROM deploys WHERE json_extract(record, '$.state') IN (${UNFINISHED_STATES.map((s) => `'${s}'`).join(", ")}) ORDER BY rowid`,
  );
  const parse = (row: { record: string } | null) => (row ? (JSON.parse(row.record) as DeployRecord) : undefined);

  return {
    add(record) {
      insert.run({ id: record.id, target: record.target, record: JSON.stringify(record) });
      prune.run({ target: record.target, keep });
    },
    update(id, patch) {
      const record = { ...parse(byId.get({ id }))!, ...patch };
      replace.run({ id, record: JSON.stringify(record) });
      return record;
    },
    get: (id) => parse(byId.get({ id })),
    latest: (target) => parse(newest.get({ target, limit: 1 })),
    list: ({ target, limit = 100 } = {}) => newest.all({ target: target ?? null, limit }).map((row) => parse(row)!),
    unfinished: () => owed.all().map((row) => parse(row)!),
  };
}
