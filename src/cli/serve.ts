import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { ConfigError } from "../config/config-error.ts";
import { createConfigRef, type ConfigRef } from "../config/config-ref.ts";
import { DEFAULT_LISTEN, loadConfigFile, type ServeConfig } from "../config/load-config-file.ts";
import { checkStateDir, loadTargetFromFlags } from "../config/load-target.ts";
import { readSecretFile } from "../config/read-secrets.ts";
import { Secret } from "../config/secret.ts";
import { defaultStateDir } from "../config/state-dir.ts";
import { createDeployer } from "../deploy/deployer.ts";
import { createApp, MAX_BODY_BYTES } from "../http/app.ts";
import { BODY_TIMEOUT_MS } from "../http/read-body.ts";
import { createLogger, type Logger } from "../log.ts";
import { openDatabase } from "../state/database.ts";
import { createSqliteDeliveryIds } from "../state/delivery-ids.ts";
import { createMemoryHistory } from "../state/history.ts";
import { parseFlags, serveFlags, type ServeFlags } from "./flags.ts";
import { parseListen } from "./listen.ts";

/** How long a stopping daemon waits for a running deploy before it exits anyway. */
const SHUTDOWN_GRACE_MS = 60_000;

export async function serve(argv: string[]): Promise<number> {
  // Everything is read and validated before the first side effect.
  const flags = parseFlags(serveFlags, argv);
  const configFile = flags.config === undefined ? undefined : resolve(flags.config);
  const initial = configFile ? await loadFromFile(configFile, flags) : await loadFromFlags(flags);
  // Problems are named the way the user gave the setting: a flag, or a key of the file.
  const [stateDirName, listenName] = configFile ? ["state_dir", "listen"] : ["--state-dir", "--listen"];
  const { listen, stateDir } = initial;

  // The environment can still refuse what the settings ask for (a read-only
  // parent, a port in use): those are exit 2 with the setting's name, not a crash.
  await mkdir(stateDir, { recursive: true, mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(`${stateDirName}: cannot create ${stateDir} (${err.code ?? err.message})`);
  });
  const log = createLogger();
  const config = createConfigRef(initial);
  const deliveryIds = createSqliteDeliveryIds(openDatabase(stateDir));
  const deployer = createDeployer({ targets: () => config.current().targets, history: createMemoryHistory(), log });
  const app = createApp({ config, deployer, log, deliveryIds });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: listen.host,
      port: listen.port,
      fetch: app.fetch,
      // Slightly above the app's own limit so that the app answers with its JSON 413.
      maxRequestBodySize: MAX_BODY_BYTES + 64 * 1024,
      // Bun drops a request still unanswered after idleTimeout, silently; kept
      // above the body deadline so that a trickling client gets the app's 408.
      idleTimeout: BODY_TIMEOUT_MS / 1000 + 5,
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`${listenName}: cannot listen on ${listen.host}:${listen.port} (${code ?? String(err)})`);
  }

  // Reloads run one after another; each either replaces the whole config or changes nothing.
  let reloading = Promise.resolve();
  const onHangup = () => {
    reloading = reloading.then(() => (configFile ? reload(configFile, config, log) : log.warn("SIGHUP ignored: there is no --config file to reload")));
  };

  // The handlers go in before the "listening" line: a supervisor (or test)
  // that reacts to that line with SIGTERM or SIGHUP must get a clean stop or
  // a reload, not the default action of the signal (exit).
  process.on("SIGHUP", onHangup);
  const stopped = new Promise<number>((done) => {
    const stop = async (signal: string) => {
      log.info("stopping", { signal });
      process.off("SIGHUP", onHangup);
      await server.stop();
      await Promise.race([deployer.idle(), Bun.sleep(SHUTDOWN_GRACE_MS)]);
      done(0);
    };
    process.once("SIGTERM", () => void stop("SIGTERM"));
    process.once("SIGINT", () => void stop("SIGINT"));
  });
  // With one target its fields also stand at the top level, as they always have for --repo.
  const [only, ...more] = describeTargets(initial);
  const single = only && more.length === 0 ? { target: only.name, repo: only.repo, refs: only.refs, authenticated: only.authenticated } : {};
  log.info("listening", { url: server.url.href, config: configFile, ...single, targets: describeTargets(initial) });
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
    const problems = err instanceof ConfigError ? err.problems : [err instanceof Error ? err.message : String(err)];
    log.error("config reload rejected; the previous config stays in force", { config: file, problems });
    return;
  }
  if (next.listen.host !== old.listen.host || next.listen.port !== old.listen.port || next.stateDir !== old.stateDir) {
    log.warn("listen and state_dir take effect only on restart", { config: file });
  }
  config.replace({ ...next, listen: old.listen, stateDir: old.stateDir });
  log.info("config reloaded", { config: file, targets: describeTargets(next) });
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

async function loadFromFlags(flags: ServeFlags): Promise<ServeConfig> {
  const secret = await loadWebhookSecret(flags);
  const target = await loadTargetFromFlags(flags, { secrets: secret ? [secret] : [], signingTokens: [] });
  const listen = flags.listen === undefined ? DEFAULT_LISTEN : parseListen(flags.listen);
  const stateDir = resolve(flags["state-dir"] ?? defaultStateDir());
  checkStateDir(stateDir, target, flags["state-dir"] !== undefined);
  return { listen, stateDir, targets: [target] };
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
