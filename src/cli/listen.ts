import { ConfigError } from "../config/config-error.ts";
import type { Listen } from "../config/schema.ts";

/** HOST:PORT, with IPv6 hosts in brackets: 127.0.0.1:8000, [::1]:8000, 0.0.0.0:443. */
export function parseListen(value: string): Listen {
  const match = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new ConfigError(`--listen: '${value}' is not HOST:PORT (e.g. 127.0.0.1:8000)`);
  return { host: match[1] ?? match[2]!, port };
}
