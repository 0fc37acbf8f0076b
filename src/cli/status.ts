import { basename, resolve } from "node:path";
import { createMemoryHistory, createSqliteHistory } from "../state/history.ts";
import { createKnownTargets, type KnownTarget } from "../state/known-targets.ts";
import { readTargetStatus } from "../state/target-status.ts";
import { parseFlags, statusFlags } from "./flags.ts";
import { openStateForReading } from "./open-state.ts";
import { formatTable, short } from "./table.ts";

/**
 * `hooksd status`: each target's deployed commit (read from its checkout) and
 * last deploy (from the history). The targets are the ones the daemon or
 * `hooksd deploy` recorded in the state dir at start; --repo names one
 * directly, e.g. before anything was recorded.
 */
export async function status(argv: string[]): Promise<number> {
  const flags = parseFlags(statusFlags, argv);
  const { stateDir, db } = openStateForReading(flags["state-dir"]);
  try {
    const known = db ? createKnownTargets(db).list() : [];
    const targets = flags.repo ? [fromFlags(flags.repo, flags.name, known)] : known;
    const history = db ? createSqliteHistory(db) : createMemoryHistory();
    const statuses = await Promise.all(targets.map((t) => readTargetStatus(t, history)));
    if (flags.json) process.stdout.write(JSON.stringify({ targets: statuses }, null, 2) + "\n");
    else if (statuses.length === 0) process.stdout.write(`no targets recorded in ${stateDir} (start 'hooksd serve' there, or pass --repo DIR)\n`);
    else {
      const rows = statuses.map((s) => [s.name, short(s.deployedCommit), s.lastDeploy?.id ?? "-", s.lastDeploy?.state ?? "-", s.lastDeploy?.finishedAt ?? "-", s.repo, s.lastDeploy?.error ?? ""]);
      process.stdout.write(formatTable(["TARGET", "DEPLOYED", "LAST DEPLOY", "STATE", "FINISHED", "REPO", "ERROR"], rows));
    }
    return 0;
  } finally {
    db?.close();
  }
}

function fromFlags(repo: string, name: string | undefined, known: KnownTarget[]): KnownTarget {
  const dir = resolve(repo);
  const recorded = known.find((t) => t.repo === dir || t.name === name);
  return { name: name ?? recorded?.name ?? basename(dir), repo: dir, refs: recorded?.refs ?? "-" };
}
