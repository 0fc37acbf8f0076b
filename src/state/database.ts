import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

/**
 * hooksd's one state file. WAL lets `hooksd history` and `hooksd rollback`
 * read and write while the daemon runs; the busy timeout makes two writers
 * wait for each other instead of failing.
 */
export function openDatabase(stateDir: string): Database {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const db = new Database(join(stateDir, "hooksd.sqlite"), { create: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA busy_timeout = 5000");
  db.run("PRAGMA synchronous = NORMAL");
  return db;
}
