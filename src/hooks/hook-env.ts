import type { Secret } from "../config/secret.ts";

/** Variables that hold secrets by name: hooksd's own, systemd's credentials, and the usual suspects. */
const SECRET_NAMES = /^(HOOKSD_SECRET|CREDENTIALS_DIRECTORY)$|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_KEY|API_KEY/i;

/**
 * A hook's environment: hooksd's own minus everything that holds a secret —
 * by name, and any variable whose value contains one of the target's secrets
 * (webhook secret, remote password) — plus the deploy's HOOKSD_* variables.
 */
export function hookEnvironment(base: NodeJS.ProcessEnv, secrets: (Secret | undefined)[], extra: Record<string, string>): Record<string, string> {
  const values = secrets.filter((s) => s !== undefined).map((s) => s.reveal()).filter((v) => v.length > 0);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(base)) {
    if (value === undefined || SECRET_NAMES.test(name) || name.startsWith("HOOKSD_")) continue;
    if (values.some((secret) => value.includes(secret))) continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}
