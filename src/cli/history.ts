import { createMemoryHistory, createSqliteHistory, type DeployRecord } from "../state/history.ts";
import { historyFlags, parseCount, parseFlags } from "./flags.ts";
import { openStateForReading } from "./open-state.ts";
import { formatTable, short } from "./table.ts";

/** `hooksd history`: the recorded deploys, newest first, from the state dir (a daemon need not run). */
export async function history(argv: string[]): Promise<number> {
  const flags = parseFlags(historyFlags, argv);
  const limit = parseCount(flags.limit, "--limit", 20);
  const { stateDir, db } = openStateForReading(flags["state-dir"]);
  try {
    const records = (db ? createSqliteHistory(db) : createMemoryHistory()).list({ target: flags.target, limit });
    if (flags.json) process.stdout.write(JSON.stringify(records, null, 2) + "\n");
    else if (records.length === 0) process.stdout.write(`no deploys recorded in ${stateDir}${flags.target ? ` for target ${flags.target}` : ""}\n`);
    else process.stdout.write(formatTable(["ID", "TARGET", "STATE", "REF", "FROM", "TO", "QUEUED", "TOOK", "ERROR"], records.map(row)));
    return 0;
  } finally {
    db?.close();
  }
}

function row(r: DeployRecord): string[] {
  const took = r.startedAt && r.finishedAt ? `${((Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000).toFixed(1)}s` : "-";
  return [r.id, r.target, r.state, r.ref, short(r.previous), short(r.commit), r.queuedAt.replace("T", " ").slice(0, 19), took, r.error ?? ""];
}
