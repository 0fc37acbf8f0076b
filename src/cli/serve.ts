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

  // The environment can still refuse what the flags ask for (a read-only
  // parent, a port in use): those are exit 2 with the flag's name, not a crash.
  await mkdir(stateDir, { recursive: true, mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(`--state-dir: cannot create ${stateDir} (${err.code ?? err.message})`);
  });
  const log = createLogger();
  // In sqlite, so that `hooksd rollback` (another process) records into the same history.
  const deployer = createDeployer({ targets: [target], history: createSqliteHistory(openDatabase(stateDir)), log });
  const app = createApp({ target, deployer, log });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: listen.host,
      port: listen.port,
      fetch: app.fetch,
      // Slightly above the app's own limit so that the app answers with its JSON 413.
      maxRequestBodySize: MAX_BODY_BYTES + 64 * 1024,
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`--listen: cannot listen on ${flags.listen ?? "127.0.0.1:8000"} (${code ?? String(err)})`);
  }

  // The handlers go in before the "listening" line: a supervisor (or test)
  // that reacts to that line with SIGTERM must get a clean stop, not the
  // default action of the signal (exit 143).
  const stopped = new Promise<number>((done) => {
    const stop = async (signal: string) => {
      log.info("stopping", { signal });
      await server.stop();
      await Promise.race([deployer.idle(), Bun.sleep(SHUTDOWN_GRACE_MS)]);
      done(0);
    };
    process.once("SIGTERM", () => void stop("SIGTERM"));
    process.once("SIGINT", () => void stop("SIGINT"));
  });
  log.info("listening", { url: server.url.href, target: target.name, repo: target.repo, refs: target.refs, authenticated: secret !== undefined });
  return stopped;
}

/**
 * The webhook secret comes from a file or the environment, never from argv
 * (which every local user can read). It is removed from the environment so
 * that nothing hooksd starts inherits it.
 */
async function loadWebhookSecret(flags: ServeFlags): Promise<Secret | undefined> {
  const fromEnv = process.env.HOOKSD_SECRET || undefined; // set but empty counts as unset
  delete process.env.HOOKSD_SECRET;
  if (flags["secret-file"] !== undefined && fromEnv !== undefined) {
    throw new ConfigError("--secret-file and HOOKSD_SECRET are both set: give the secret once");
  }
  if (flags["secret-file"] !== undefined) return readSecretFile(flags["secret-file"], "--secret-file");
  if (fromEnv !== undefined) return new Secret(fromEnv);
  if (flags["allow-unauthenticated"]) return undefined;
  throw new ConfigError("no webhook secret: pass --secret-file FILE or set HOOKSD_SECRET (or --allow-unauthenticated to accept unsigned deliveries)");
}
