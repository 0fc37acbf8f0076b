import type { Database } from "bun:sqlite";

/**
 * The delivery ids already acted on, so that a forge's redelivery of a push
 * never deploys it twice. Only ids of verified deliveries that were queued for
 * a deploy are recorded (the webhook handler makes sure), so an unauthenticated
 * sender cannot fill the set, and a delivery that was ignored (another branch,
 * say) can still deploy when redelivered after the config is fixed.
 */
export interface DeliveryIds {
  /** Records the id for the target; false if it was recorded before. Check and record are one step. */
  claim(target: string, id: string): boolean;
}

/** How many ids are remembered: far more than a forge redelivers within its retry window. */
export const DELIVERY_IDS_KEPT = 10_000;

/** Survives restarts; keeps the newest `keep` ids. */
export function createSqliteDeliveryIds(db: Database, keep = DELIVERY_IDS_KEPT): DeliveryIds {
  db.run(`CREATE TABLE IF NOT EXISTS delivery_ids (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    id TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    UNIQUE (target, id)
  )`);
  const insert = db.prepare("INSERT OR IGNORE INTO delivery_ids (target, id, seen_at) VALUES ($target, $id, $seenAt)");
  const prune = db.prepare("DELETE FROM delivery_ids WHERE seq <= (SELECT max(seq) FROM delivery_ids) - $keep");
  return {
    claim(target, id) {
      const { changes } = insert.run({ target, id, seenAt: new Date().toISOString() });
      if (changes === 0) return false;
      prune.run({ keep });
      return true;
    },
  };
}

/** For tests and callers without a state dir. */
export function createMemoryDeliveryIds(keep = DELIVERY_IDS_KEPT): DeliveryIds {
  const seen = new Set<string>();
  return {
    claim(target, id) {
      const key = JSON.stringify([target, id]);
      if (seen.has(key)) return false;
      seen.add(key);
      // Sets iterate in insertion order: the first key is the oldest.
      if (seen.size > keep) seen.delete(seen.values().next().value!);
      return true;
    },
  };
}
