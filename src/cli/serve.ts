import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { loadAdminToken } from "../config/admin-token.ts";
import { ConfigError } from "../config/config-error.ts";
import { checkStateDir, loadTargetFromFlags } from "../config/load-target.ts";
import { readSecretFile } from "../config/read-secrets.ts";
import { Secret } from "../config/secret.ts";
import { defaultStateDir } from "../config/state-dir.ts";
import { createDeployer } from "../deploy/deployer.ts";
import { createApp, MAX_BODY_BYTES } from "../http/app.ts";
import { checkCertificates, startListener, type TlsFiles } from "../http/listener.ts";
import { createLogger } from "../log.ts";
import { createMetrics } from "../metrics/hooksd-metrics.ts";
import { openDatabase } from "../state/database.ts";
import { createSqliteHistory } from "../state/history.ts";
import { createKnownTargets } from "../state/known-targets.ts";
import { parseCount, parseFlags, serveFlags, type ServeFlags } from "./flags.ts";
import { parseListen } from "./listen.ts";

/** How long a stopping daemon waits for a running deploy before it exits anyway (--shutdown-timeout). */
const DEFAULT_SHUTDOWN_SECONDS = 90;

export async function serve(argv: string[]): Promise<number> {
  // Everything is read and validated before the first side effect.
  const flags = parseFlags(serveFlags, argv);
  const secret = await loadWebhookSecret(flags);
  const target = await loadTargetFromFlags(flags, secret);
  const listen = parseListen(flags.listen ?? "127.0.0.1:8000");
  const stateDir = resolve(flags["state-dir"] ?? defaultStateDir());
  checkStateDir(stateDir, target, flags["state-dir"] !== undefined);
  const tls = readTlsFlags(flags);
  if (tls) await checkCertificates(tls);
  const adminToken = await loadAdminToken(flags["admin-token-file"]);
  const shutdownMs = parseCount(flags["shutdown-timeout"], "--shutdown-timeout", DEFAULT_SHUTDOWN_SECONDS, 0) * 1000;

  // The environment can still refuse what the flags ask for (a read-only
  // parent, a port in use): those are exit 2 with the flag's name, not a crash.
  await mkdir(stateDir, { recursive: true, mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(`--state-dir: cannot create ${stateDir} (${err.code ?? err.message})`);
  });
  const log = createLogger();
  const db = openDatabase(stateDir);
  createKnownTargets(db).save([target]);
  const metrics = createMetrics();
  const history = metrics.observe(createSqliteHistory(db), [target.name]);
  const deployer = createDeployer({ targets: [target], history, log });
  const app = createApp({ target, deployer, log, history, metrics, adminToken });
  const listener = await startListener({
    listen,
    tls,
    fetch: app.fetch,
    // Slightly above the app's own limit so that the app answers with its JSON 413.
    maxRequestBodySize: MAX_BODY_BYTES + 64 * 1024,
    log,
  }).catch((err: NodeJS.ErrnoException) => {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`--listen: cannot listen on ${flags.listen ?? "127.0.0.1:8000"} (${err.code ?? String(err)})`);
  });

  const reload = () => void listener.reloadCertificates();
  process.on("SIGHUP", reload);
  // The handlers go in before the "listening" line: a supervisor (or test)
  // that reacts to that line with SIGTERM must get a clean stop, not the
  // default action of the signal (exit 143).
  const stopped = new Promise<number>((done) => {
    // Deliveries get 503 from here on; the running deploy may finish; what
    // waits stays `queued` in the history and runs after the next start.
    const stop = async (signal: string) => {
      // What waits now stays queued: the queues start nothing more and deliveries are refused.
      const queued = history.unfinished().filter((r) => r.state === "queued").map((r) => r.id);
      log.info("stopping", { signal, graceSeconds: shutdownMs / 1000, queued });
      const finished = await deployer.shutdown(shutdownMs);
      if (!finished) log.warn("a deploy was still running at the shutdown timeout; the next start redoes it", { graceSeconds: shutdownMs / 1000 });
      process.off("SIGHUP", reload);
      await listener.stop();
      // A deploy cut off by the timeout may still write its record until the process exits.
      if (finished) db.close();
      done(0);
    };
    process.once("SIGTERM", () => void stop("SIGTERM"));
    process.once("SIGINT", () => void stop("SIGINT"));
  });
  log.info("listening", { url: listener.url.href, target: target.name, repo: target.repo, refs: target.refs, authenticated: secret !== undefined, tls: tls !== undefined });
  deployer.recover();
  return stopped;
}

function readTlsFlags(flags: ServeFlags): TlsFiles | undefined {
  const certFile = flags["tls-cert"];
  const keyFile = flags["tls-key"];
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) throw new ConfigError("--tls-cert and --tls-key go together: give both or neither");
  return { certFile: resolve(certFile), keyFile: resolve(keyFile) };
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
