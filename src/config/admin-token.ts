import { existsSync } from "node:fs";
import { join } from "node:path";
import { readSecretFile } from "./read-secrets.ts";
import type { Secret } from "./secret.ts";

/**
 * The token that opens the admin endpoints to non-loopback clients: from
 * --admin-token-file (admin_token_file in a config file, named by `name`), else systemd's credential `admin-token`
 * (LoadCredential=admin-token:/etc/hooksd/admin-token), else none, in which
 * case only loopback clients may read them.
 */
export async function loadAdminToken(file: string | undefined, name: string, env: NodeJS.ProcessEnv = process.env): Promise<Secret | undefined> {
  if (file !== undefined) return readSecretFile(file, name);
  const credential = env.CREDENTIALS_DIRECTORY && join(env.CREDENTIALS_DIRECTORY, "admin-token");
  if (credential && existsSync(credential)) return readSecretFile(credential, "credential admin-token");
  return undefined;
}
