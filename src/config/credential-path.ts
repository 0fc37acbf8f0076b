import { existsSync } from "node:fs";
import { join } from "node:path";

/**
 * The file systemd made for `LoadCredential=NAME:...` ($CREDENTIALS_DIRECTORY/NAME),
 * or undefined when not run by systemd or the unit passes no such credential.
 */
export function credentialPath(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = env.CREDENTIALS_DIRECTORY;
  if (!dir) return undefined;
  const path = join(dir, name);
  return existsSync(path) ? path : undefined;
}
