import type { Database } from "bun:sqlite";

/** What `hooksd status` needs to find a target's checkout without the daemon's command line. */
export interface KnownTarget {
  name: string;
  repo: string;
  refs: string;
}

/**
 * The targets a daemon (or `hooksd deploy`) last ran with, written at start-up,
 * so that `hooksd status` can read each checkout's deployed commit with or
 * without a running daemon.
 */
export function createKnownTargets(db: Database) {
  db.run(`CREATE TABLE IF NOT EXISTS targets (
    name TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    refs TEXT NOT NULL
  )`);
  const upsert = db.prepare(
    "INSERT INTO targets (name, repo, refs) VALUES ($name, $repo, $refs) ON CONFLICT (name) DO UPDATE SET repo = $repo, refs = $refs",
  );
  const all = db.prepare<KnownTarget, []>("SELECT name, repo, refs FROM targets ORDER BY name");
  return {
    save(targets: readonly KnownTarget[]): void {
      db.transaction(() => {
        for (const { name, repo, refs } of targets) upsert.run({ name, repo, refs });
      })();
    },
    list: (): KnownTarget[] => all.all(),
  };
}
