import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { loadAdminToken } from "../config/admin-token.ts";
import { ConfigError } from "../config/config-error.ts";
import { credentialPath } from "../config/credential-path.ts";
import { createConfigRef, type ConfigRef } from "../config/config-ref.ts";
import { DEFAULT_LISTEN, DEFAULT_SHUTDOWN_SECONDS, loadConfigFile, type ServeConfig, type TlsFiles } from "../config/load-config-file.ts";
import { checkStateDir, loadTargetFromFlags } from "../config/load-target.ts";
import { readSecretFile } from "../config/read-secrets.ts";
import { Secret } from "../config/secret.ts";
import { defaultStateDir } from "../config/state-dir.ts";
import { createDeployer } from "../deploy/deployer.ts";
import { createDeployThread } from "../deploy/deploy-thread.ts";
import { createApp, MAX_BODY_BYTES } from "../http/app.ts";
import { checkCertificates, startListener } from "../http/listener.ts";
import { BODY_TIMEOUT_MS } from "../http/read-body.ts";
import { createLogger, type Logger } from "../log.ts";
import { createMetrics } from "../metrics/hooksd-metrics.ts";
import { openDatabase } from "../state/database.ts";
import { createSqliteDeliveryIds } from "../state/delivery-ids.ts";
import { createSqliteHistory } from "../state/history.ts";
import { createKnownTargets } from "../state/known-targets.ts";
import { createNotifier } from "../systemd/notify.ts";
import { formatStatusLine } from "../systemd/status-line.ts";
import { parseCount, parseFlags, serveFlags, type ServeFlags } from "./flags.ts";
import { parseListen } from "./listen.ts";
import { errorMessage } from "../util/error-message.ts";

/** Names of the credentials a unit passes with LoadCredential=NAME:FILE. */
const WEBHOOK_SECRET = "webhook-secret";
const GIT_CREDENTIALS = "git-credentials";

export async function serve(argv: string[]): Promise<number> {
  // Everything is read and validated before the first side effect.
  const flags = parseFlags(serveFlags, argv);
  const configFile = flags.config === undefined ? undefined : resolve(flags.config);
  const initial = configFile ? await loadFromFile(configFile, flags) : await loadFromFlags(flags);
  // Problems are named the way the user gave the setting: a flag, or a key of the file.
  const [stateDirName, listenName, adminTokenName] = configFile ? ["state_dir", "listen", "admin_token_file"] : ["--state-dir", "--listen", "--admin-token-file"];
  const { listen, stateDir, tls } = initial;
  if (tls) await checkCertificates(tls);
  const adminToken = await loadAdminToken(initial.adminTokenFile, adminTokenName);
  const shutdownMs = initial.shutdownTimeoutSeconds * 1000;

  // The environment can still refuse what the settings ask for (a read-only
  // parent, a port in use): those are exit 2 with the setting's name, not a crash.
  await mkdir(stateDir, { recursive: true, mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(`${stateDirName}: cannot create ${stateDir} (${err.code ?? err.message})`);
  });
  const log = createLogger();
  const notifier = createNotifier({ log });
  const showStatus = async () => notifier.status(formatStatusLine(await deployer.status()));
  const config = createConfigRef(initial);
  const db = openDatabase(stateDir);
  const knownTargets = createKnownTargets(db);
  knownTargets.save(initial.targets);
  const deliveryIds = createSqliteDeliveryIds(db);
  const metrics = createMetrics();
  const history = metrics.observe(createSqliteHistory(db), initial.targets.map((t) => t.name));
  const deployThread = createDeployThread();
  const deployer = createDeployer({ targets: () => config.current().targets, history, log, onSettled: () => void showStatus(), runDeploy: deployThread.runDeploy });
  const app = createApp({ config, deployer, log, deliveryIds, history, metrics, adminToken });
  const listener = await startListener({
    listen,
    tls,
    fetch: app.fetch,
    // Slightly above the app's own limit so that the app answers with its JSON 413.
    maxRequestBodySize: MAX_BODY_BYTES + 64 * 1024,
    // Bun drops a request still unanswered after its idle timeout, silently;
    // kept above the body deadline so that a trickling client gets the app's 408.
    idleTimeoutSeconds: BODY_TIMEOUT_MS / 1000 + 5,
    log,
  }).catch((err: NodeJS.ErrnoException) => {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${listenName}: cannot listen on ${listen.host}:${listen.port} (${err.code ?? String(err)})`);
  });

  deployThread.warm();

  // SIGHUP re-reads the config file and the TLS certificate; reloads run one
  // after another, and each either replaces the whole thing or changes nothing.
  let reloading = Promise.resolve();
  const onHangup = () => {
    notifier.reloading();
    reloading = reloading
      .then(async () => {
        if (!configFile && !tls) return log.warn("SIGHUP ignored: there is no --config file to reload");
        if (configFile) {
          await reload(configFile, config, log);
          knownTargets.save(config.current().targets);
        }
        if (tls) await listener.reloadCertificates();
      })
      .then(showStatus)
      .finally(() => notifier.ready());
  };

  // The handlers go in before the "listening" line: a supervisor (or test)
  // that reacts to that line with SIGTERM or SIGHUP must get a clean stop or
  // a reload, not the default action of the signal (exit).
  process.on("SIGHUP", onHangup);
  const stopped = new Promise<number>((done) => {
    // Deliveries get 503 from here on; the running deploy may finish; what
    // waits stays `queued` in the history and runs after the next start.
    const stop = async (signal: string) => {
      const queued = history.unfinished().filter((r) => r.state === "queued").map((r) => r.id);
      log.info("stopping", { signal, graceSeconds: shutdownMs / 1000, queued });
      notifier.stopping();
      process.off("SIGHUP", onHangup);
      const finished = await deployer.shutdown(shutdownMs);
      if (!finished) log.warn("a deploy was still running at the shutdown timeout; the next start redoes it", { graceSeconds: shutdownMs / 1000 });
      await listener.stop();
      // A deploy cut off by the timeout may still write its record until the process exits.
      if (finished) {
        deployThread.stop();
        db.close();
      }
      notifier.close();
      done(0);
    };
    process.once("SIGTERM", () => void stop("SIGTERM"));
    process.once("SIGINT", () => void stop("SIGINT"));
  });
  // With one target its fields also stand at the top level, as they always have for --repo.
  const [only, ...more] = describeTargets(initial);
  const single = only && more.length === 0 ? { target: only.name, repo: only.repo, refs: only.refs, authenticated: only.authenticated } : {};
  log.info("listening", { url: listener.url.href, config: configFile, ...single, targets: describeTargets(initial), tls: tls !== undefined });
  deployer.recover();
  await showStatus();
  notifier.ready();
  return stopped;
}

/**
 * A new config is swapped in only once it is entirely valid. Deploys already
 * queued or running keep the target they were submitted with.
 */
async function reload(file: string, config: ConfigRef<ServeConfig>, log: Logger): Promise<void> {
  const old = config.current();
  let next: ServeConfig;
  try {
    next = await loadConfigFile(file);
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [errorMessage(err)];
    log.error("config reload rejected; the previous config stays in force", { config: file, problems });
    return;
  }
  const restartOnly = ["listen", "state_dir", "tls_cert", "tls_key", "admin_token_file", "shutdown_timeout"].filter((key) => {
    const [a, b] = [settingOf(old, key), settingOf(next, key)];
    return JSON.stringify(a) !== JSON.stringify(b);
  });
  if (restartOnly.length) log.warn(`${restartOnly.join(", ")} take effect only on restart`, { config: file });
  const { listen, stateDir, tls, adminTokenFile, shutdownTimeoutSeconds } = old;
  config.replace({ ...next, listen, stateDir, tls, adminTokenFile, shutdownTimeoutSeconds });
  log.info("config reloaded", { config: file, targets: describeTargets(next) });
}

function settingOf(config: ServeConfig, key: string): unknown {
  const values: Record<string, unknown> = {
    listen: config.listen,
    state_dir: config.stateDir,
    tls_cert: config.tls?.certFile,
    tls_key: config.tls?.keyFile,
    admin_token_file: config.adminTokenFile,
    shutdown_timeout: config.shutdownTimeoutSeconds,
  };
  return values[key];
}

function describeTargets(config: ServeConfig) {
  return config.targets.map((t) => ({ name: t.name, repo: t.repo, refs: t.refs, authenticated: t.secrets.length + t.signingTokens.length > 0 }));
}

/** Everything comes from the file: a flag beside it would be a second, conflicting source. */
async function loadFromFile(file: string, flags: ServeFlags): Promise<ServeConfig> {
  const others = Object.keys(flags).filter((flag) => flag !== "config" && flag !== "help");
  if (others.length > 0) throw new ConfigError(`--${others[0]} cannot be combined with --config (set it in the config file)`);
  if (process.env.HOOKSD_SECRET !== undefined) {
    delete process.env.HOOKSD_SECRET;
    throw new ConfigError("HOOKSD_SECRET cannot be combined with --config (name secret files per target in the config file)");
  }
  return loadConfigFile(file);
}

async function loadFromFlags(parsed: ServeFlags): Promise<ServeConfig> {
  const flags = { ...parsed, "credentials-file": parsed["credentials-file"] ?? credentialPath(GIT_CREDENTIALS) };
  const secret = await loadWebhookSecret(flags);
  const target = await loadTargetFromFlags(flags, { secrets: secret ? [secret] : [], signingTokens: [] });
  const listen = flags.listen === undefined ? DEFAULT_LISTEN : parseListen(flags.listen);
  const stateDir = resolve(flags["state-dir"] ?? defaultStateDir());
  checkStateDir(stateDir, target, flags["state-dir"] !== undefined);
  return {
    listen,
    stateDir,
    targets: [target],
    tls: readTlsFlags(flags),
    adminTokenFile: flags["admin-token-file"],
    shutdownTimeoutSeconds: parseCount(flags["shutdown-timeout"], "--shutdown-timeout", DEFAULT_SHUTDOWN_SECONDS, 0),
  };
}

function readTlsFlags(flags: ServeFlags): TlsFiles | undefined {
  const certFile = flags["tls-cert"];
  const keyFile = flags["tls-key"];
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) throw new ConfigError("--tls-cert and --tls-key go together: give both or neither");
  return { certFile: resolve(certFile), keyFile: resolve(keyFile), names: "--tls-cert/--tls-key" };
}

/**
 * The webhook secret comes from a file, the environment or a systemd
 * credential, never from argv (which every local user can read). It is removed
 * from the environment so that nothing hooksd starts inherits it.
 */
async function loadWebhookSecret(flags: ServeFlags): Promise<Secret | undefined> {
  const fromEnv = process.env.HOOKSD_SECRET || undefined; // set but empty counts as unset
  delete process.env.HOOKSD_SECRET;
  if (flags["secret-file"] !== undefined && fromEnv !== undefined) {
    throw new ConfigError("--secret-file and HOOKSD_SECRET are both set: give the secret once");
  }
  if (flags["secret-file"] !== undefined) return readSecretFile(flags["secret-file"], "--secret-file");
  if (fromEnv !== undefined) return new Secret(fromEnv);
  const credential = credentialPath(WEBHOOK_SECRET);
  if (credential) return readSecretFile(credential, `credential ${WEBHOOK_SECRET}`);
  if (flags["allow-unauthenticated"]) return undefined;
  throw new ConfigError(
    `no webhook secret: pass --secret-file FILE, set HOOKSD_SECRET or LoadCredential=${WEBHOOK_SECRET}:FILE (or --allow-unauthenticated to accept unsigned deliveries)`,
  );
}
