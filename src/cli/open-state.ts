import type { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError } from "../config/config-error.ts";
import { defaultStateDir } from "../config/state-dir.ts";
import { openDatabase } from "../state/database.ts";

/**
 * For the commands that only read: the state dir's database, or undefined
 * when nothing was ever recorded there (no file is created by looking).
 * WAL mode lets them read while a daemon writes.
 */
export function openStateForReading(flag: string | undefined): { stateDir: string; db: Database | undefined } {
  const stateDir = resolve(flag ?? defaultStateDir());
  if (!existsSync(join(stateDir, "hooksd.sqlite"))) return { stateDir, db: undefined };
  try {
    return { stateDir, db: openDatabase(stateDir) };
  } catch (err) {
    throw new ConfigError(`--state-dir: cannot open ${join(stateDir, "hooksd.sqlite")} (${(err as Error).message})`);
  }
}
