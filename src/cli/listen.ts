import { ConfigError } from "../config/config-error.ts";
import { splitListenAddress } from "../config/listen-address.ts";
import type { Listen } from "../config/schema.ts";

/** HOST:PORT, with IPv6 hosts in brackets: 127.0.0.1:8000, [::1]:8000, 0.0.0.0:443. */
export function parseListen(value: string): Listen {
  const listen = splitListenAddress(value);
  if (!listen) throw new ConfigError(`--listen: '${value}' is not HOST:PORT (e.g. 127.0.0.1:8000)`);
  return listen;
}
