import { ConfigError } from "../config/config-error.ts";
import { loadConfigFile } from "../config/load-config-file.ts";
import { checkFlags, parseFlags } from "./flags.ts";

/** `hooksd check --config FILE`: validates everything serve would, reads the secret files, and changes nothing. */
export async function check(argv: string[]): Promise<number> {
  const flags = parseFlags(checkFlags, argv);
  if (flags.config === undefined) throw new ConfigError("--config is required: the file to check");
  try {
    const config = await loadConfigFile(flags.config);
    const names = config.targets.map((t) => t.name).join(", ");
    process.stdout.write(`${flags.config}: ok (${config.targets.length} target${config.targets.length === 1 ? "" : "s"}: ${names})\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const count = err.problems.length;
    process.stderr.write(`${flags.config}: ${count} problem${count === 1 ? "" : "s"}\n${err.problems.map((p) => `  ${p}\n`).join("")}`);
    return 2;
  }
}
