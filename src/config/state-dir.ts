import { homedir } from "node:os";
import { join } from "node:path";

/** systemd's StateDirectory= first, then the XDG convention. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromSystemd = env.STATE_DIRECTORY?.split(":")[0];
  if (fromSystemd) return fromSystemd;
  return join(env.XDG_STATE_HOME || join(homedir(), ".local", "state"), "hooksd");
}
