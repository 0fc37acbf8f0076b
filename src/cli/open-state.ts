import type { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { defaultStateDir } from "../config/state-dir.ts";
import { openDatabase } from "../state/database.ts";

/**
 * For the commands that only read: the state dir's database, or undefined
 * when nothing was ever recorded there (no file is created by looking).
 * WAL mode lets them read while a daemon writes.
 */
export function openStateForReading(flag: string | undefined): { stateDir: string; db: Database | undefined } {
  const stateDir = resolve(flag ?? defaultStateDir());
  const db = existsSync(join(stateDir, "hooksd.sqlite")) ? openDatabase(stateDir) : undefined;
  return { stateDir, db };
}
