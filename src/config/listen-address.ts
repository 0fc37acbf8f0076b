import type { Listen } from "./schema.ts";

/** HOST:PORT, with IPv6 hosts in brackets: 127.0.0.1:8000, [::1]:8000, 0.0.0.0:443. Undefined if malformed. */
export function splitListenAddress(value: string): Listen | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) return undefined;
  return { host: match[1] ?? match[2]!, port };
}
