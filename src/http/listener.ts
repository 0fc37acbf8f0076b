import { readFile } from "node:fs/promises";
import { createSecureContext } from "node:tls";
import type { Server } from "bun";
import { ConfigError } from "../config/config-error.ts";
import type { TlsFiles } from "../config/load-config-file.ts";
import type { Listen } from "../config/schema.ts";
import type { Logger } from "../log.ts";
import type { ConnBindings } from "./admin-access.ts";

export interface ListenerOptions {
  listen: Listen;
  tls: TlsFiles | undefined;
  fetch: (req: Request, bindings: ConnBindings) => Response | Promise<Response>;
  maxRequestBodySize: number;
  log: Logger;
}

export interface Listener {
  readonly url: URL;
  /**
   * Reads the certificate files again and serves new connections with them.
   * A pair that does not load is logged and the current one keeps serving.
   */
  reloadCertificates(): Promise<boolean>;
  /** Closes the listening socket; requests in flight are answered first. */
  stop(): Promise<void>;
}

interface KeyPair {
  cert: string;
  key: string;
}

/**
 * Bun.serve, with TLS when certificate files are given. Bun's server.reload()
 * swaps handlers but keeps the TLS context it started with (checked: a client
 * still sees the old certificate), so a renewed certificate is put in place by
 * starting a second server on the same port (SO_REUSEPORT) and then stopping
 * the first one gracefully: the port never closes, and connections the old
 * server accepted finish their requests.
 */
export async function startListener(options: ListenerOptions): Promise<Listener> {
  const { listen, tls, log } = options;
  const first = tls ? await checkCertificates(tls) : undefined;

  const start = (pair: KeyPair | undefined, port: number): Server<undefined> =>
    Bun.serve({
      hostname: listen.host,
      port,
      reusePort: pair !== undefined,
      fetch: (req, server) => options.fetch(req, { clientAddress: server.requestIP(req)?.address }),
      maxRequestBodySize: options.maxRequestBodySize,
      ...(pair && { tls: pair }),
    });

  let server = start(first, listen.port);
  const port = server.port!;

  return {
    get url() {
      return server.url;
    },

    async reloadCertificates() {
      if (!tls) return false;
      const pair = await loadKeyPair(tls);
      if (typeof pair === "string") {
        log.error("certificate not reloaded; the current one keeps serving", { error: pair });
        return false;
      }
      let next: Server<undefined>;
      try {
        next = start(pair, port);
      } catch (err) {
        log.error("certificate not reloaded; the current one keeps serving", { error: (err as Error).message });
        return false;
      }
      const old = server;
      server = next;
      void old.stop(false);
      log.info("certificate reloaded", { cert: tls.certFile });
      return true;
    },

    stop: () => server.stop(false),
  };
}

/** Start-up check: throws a ConfigError naming the flag when the pair cannot serve. */
export async function checkCertificates(tls: TlsFiles): Promise<KeyPair> {
  const pair = await loadKeyPair(tls);
  if (typeof pair === "string") throw new ConfigError(pair);
  return pair;
}

/** Both files read and checked to form a usable pair, or the reason they do not. */
async function loadKeyPair({ certFile, keyFile, names }: TlsFiles): Promise<KeyPair | string> {
  const [certName, keyName] = names.split("/");
  let pair: KeyPair;
  try {
    pair = { cert: await readFile(certFile, "utf8"), key: await readFile(keyFile, "utf8") };
  } catch (err) {
    const { code, path } = err as NodeJS.ErrnoException;
    return `${path === keyFile ? keyName : certName}: cannot read ${path} (${code ?? "error"})`;
  }
  try {
    // Rejects an unparsable certificate or key and a key that is not the certificate's.
    createSecureContext(pair);
  } catch (err) {
    return `${names}: ${certFile} and ${keyFile} are not a usable certificate and key (${(err as Error).message})`;
  }
  return pair;
}
