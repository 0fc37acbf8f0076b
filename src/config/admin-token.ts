import { credentialPath } from "./credential-path.ts";
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
  const credential = credentialPath("admin-token", env);
  return credential === undefined ? undefined : readSecretFile(credential, "credential admin-token");
}
