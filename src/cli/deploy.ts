import { ConfigError } from "../config/config-error.ts";
import { loadTargetFromFlags } from "../config/load-target.ts";
import { createDeployer } from "../deploy/deployer.ts";
import { createLogger } from "../log.ts";
import { createMemoryHistory } from "../state/history.ts";
import { parseFlags, targetFlags } from "./flags.ts";

/** `hooksd deploy`: one deploy of the branch's current tip, through the daemon's pipeline. */
export async function deploy(argv: string[]): Promise<number> {
  const flags = parseFlags(targetFlags, argv);
  if (flags.branch === "*") throw new ConfigError("--branch: '*' needs a push to choose the branch; name one");
  const target = await loadTargetFromFlags(flags, undefined);

  const history = createMemoryHistory();
  const deployer = createDeployer({ targets: [target], history, log: createLogger() });
  const record = deployer.submit(target.name, { ref: target.refs, commit: undefined });
  await deployer.idle();
  return history.get(record.id)?.state === "succeeded" ? 0 : 1;
}
