import { resolve } from "node:path";
import { ConfigError } from "../config/config-error.ts";
import { checkStateDir, loadTargetFromFlags } from "../config/load-target.ts";
import { defaultStateDir } from "../config/state-dir.ts";
import { createDeployer } from "../deploy/deployer.ts";
import { createLogger } from "../log.ts";
import { openDatabase } from "../state/database.ts";
import { createSqliteHistory } from "../state/history.ts";
import { createKnownTargets } from "../state/known-targets.ts";
import { parseFlags, targetFlags } from "./flags.ts";

/** `hooksd deploy`: one deploy of the branch's current tip, through the daemon's pipeline, recorded in the history. */
export async function deploy(argv: string[]): Promise<number> {
  const flags = parseFlags(targetFlags, argv);
  if (flags.branch === "*") throw new ConfigError("--branch: '*' needs a push to choose the branch; name one");
  const target = await loadTargetFromFlags(flags, undefined);
  const stateDir = resolve(flags["state-dir"] ?? defaultStateDir());
  checkStateDir(stateDir, target, flags["state-dir"] !== undefined);

  const db = openDatabase(stateDir);
  try {
    createKnownTargets(db).save([target]);
    const history = createSqliteHistory(db);
    const deployer = createDeployer({ targets: [target], history, log: createLogger() });
    const record = deployer.submit(target.name, { ref: target.refs, commit: undefined });
    await deployer.idle();
    return history.get(record.id)?.state === "succeeded" ? 0 : 1;
  } finally {
    db.close();
  }
}
