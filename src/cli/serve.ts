import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { ConfigError } from "../config/config-error.ts";
import { checkStateDir, loadTargetFromFlags } from "../config/load-target.ts";
import { readSecretFile } from "../config/read-secrets.ts";
import { Secret } from "../config/secret.ts";
import { defaultStateDir } from "../config/state-dir.ts";
import { createDeployer } from "../deploy/deployer.ts";
import { createApp, MAX_BODY_BYTES } from "../http/app.ts";
import { createLogger } from "../log.ts";
import { openDatabase } from "../state/database.ts";
import { createSqliteHistory } from "../state/history.ts";
import { parseFlags, serveFlags, type ServeFlags } from "./flags.ts";
import { parseListen } from "./listen.ts";

/** How long a stopping daemon waits for a running deploy before it exits anyway. */
const SHUTDOWN_GRACE_MS = 60_000;

export async function serve(argv: string[]): Promise<number> {
  // Everything is read and validated before the first side effect.
  const flags = parseFlags(serveFlags, argv);
  const secret = await loadWebhookSecret(flags);
  const target = await loadTargetFromFlags(flags, secret);
  const listen = parseListen(flags.listen ?? "127.0.0.1:8000");
  const stateDir = resolve(flags["state-dir"] ?? defaultStateDir());
  checkStateDir(stateDir, target, flags["state-dir"] !== undefined);

  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const log = createLogger();
  // In sqlite, so that `hooksd rollback` (another process) records into the same history.
  const deployer = createDeployer({ targets: [target], history: createSqliteHistory(openDatabase(stateDir)), log });
  const app = createApp({ target, deployer, log });
  const server = Bun.serve({
    hostname: listen.host,
    port: listen.port,
    fetch: app.fetch,
    // Slightly above the app's own limit so that the app answers with its JSON 413.
    maxRequestBodySize: MAX_BODY_BYTES + 64 * 1024,
  });
  log.info("listening", { url: server.url.href, target: target.name, repo: target.repo, refs: target.refs, authenticated: secret !== undefined });

  return new Promise((done) => {
    const stop = async (signal: string) => {
      log.info("stopping", { signal });
      await server.stop();
      await Promise.race([deployer.idle(), Bun.sleep(SHUTDOWN_GRACE_MS)]);
      done(0);
    };
    process.once("SIGTERM", () => void stop("SIGTERM"));
    process.once("SIGINT", () => void stop("SIGINT"));
  });
}

/**
 * The webhook secret comes from a file or the environment, never from argv
 * (which every local user can read). It is removed from the environment so
 * that nothing hooksd starts inherits it.
 */
async function loadWebhookSecret(flags: ServeFlags): Promise<Secret | undefined> {
  const fromEnv = process.env.HOOKSD_SECRET;
  delete process.env.HOOKSD_SECRET;
  if (flags["secret-file"] !== undefined && fromEnv !== undefined) {
    throw new ConfigError("--secret-file and HOOKSD_SECRET are both set: give the secret once");
  }
  if (flags["secret-file"] !== undefined) return readSecretFile(flags["secret-file"], "--secret-file");
  if (fromEnv) return new Secret(fromEnv);
  if (flags["allow-unauthenticated"]) return undefined;
  throw new ConfigError("no webhook secret: pass --secret-file FILE or set HOOKSD_SECRET (or --allow-unauthenticated to accept unsigned deliveries)");
}
