import { existsSync } from "node:fs";
import { rename, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import unitTemplate from "../../systemd/hooksd.service" with { type: "text" };
import { ConfigError } from "../config/config-error.ts";
import { readConfigFile } from "../config/load-config-file.ts";
import { renderUnit, type UnitSettings } from "../systemd/render-unit.ts";
import { installUnitFlags, parseFlags, serveFlags, type ServeFlags } from "./flags.ts";
import { parseListen } from "./listen.ts";

const UNIT_NAME = "hooksd.service";

/** Serve flags that become LoadCredential= lines instead of arguments: the unit names files, never secrets. */
const CREDENTIAL_FLAGS = { "secret-file": "webhook-secret", "credentials-file": "git-credentials" } as const;

/**
 * `hooksd install-unit`: writes systemd/hooksd.service (embedded in the
 * executable) with this command line's serve flags in ExecStart=, the site
 * dirs writable and the secret files as credentials. It starts nothing.
 */
export async function installUnit(argv: string[]): Promise<number> {
  const { dest: destFlag, bin = "/usr/local/bin/hooksd", ...flags } = parseFlags(installUnitFlags, argv);
  for (const [flag, value] of Object.entries({ ...flags, dest: destFlag, bin })) {
    if (typeof value === "string" && /[\x00-\x1f\x7f]/.test(value)) throw new ConfigError(`--${flag}: contains a control character, which a unit file cannot hold`);
  }
  if (!bin.startsWith("/")) throw new ConfigError(`--bin: '${bin}' must be an absolute path`);
  const dest = resolve(destFlag ?? "/etc/systemd/system");
  if (!(await stat(dest).catch(() => undefined))?.isDirectory()) throw new ConfigError(`--dest: ${dest} is not a directory`);
  const settings = flags.config === undefined ? fromFlags(flags, bin) : await fromConfigFile(flags, bin);
  const unit = renderUnit(unitTemplate, settings);

  const path = join(dest, UNIT_NAME);
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, unit, { mode: 0o644 });
  await rename(temp, path);

  const out = [`wrote ${path}`];
  // systemd refuses to start a unit whose credential sources or writable paths are missing.
  for (const [name, source] of Object.entries(settings.credentials)) {
    if (!existsSync(source)) out.push(`note: ${source} (credential ${name}) does not exist yet; the service will not start without it`);
  }
  for (const dir of settings.writablePaths) {
    if (!existsSync(dir)) out.push(`note: ${dir} does not exist yet; create it owned by the service's user (see systemd/tmpfiles.d/hooksd.conf)`);
  }
  out.push("then: systemctl daemon-reload && systemctl enable --now hooksd");
  process.stdout.write(out.join("\n") + "\n");
  return 0;
}

/** One target from flags: they go into ExecStart= as given, with paths made absolute (systemd starts the service in /). */
function fromFlags(flags: ServeFlags, bin: string): UnitSettings {
  if (!flags.repo) throw new ConfigError("--repo is required: the checkout the service deploys into (or --config FILE)");
  if (flags.listen !== undefined) parseListen(flags.listen);
  const absolute: ServeFlags = { ...flags, repo: resolve(flags.repo), "state-dir": flags["state-dir"] && resolve(flags["state-dir"]) };

  const credentials: Record<string, string> = {};
  for (const [flag, name] of Object.entries(CREDENTIAL_FLAGS)) {
    const path = flags[flag as keyof typeof CREDENTIAL_FLAGS];
    if (path === undefined) continue;
    if (/\s/.test(path)) throw new ConfigError(`--${flag}: '${path}' contains whitespace, which LoadCredential= cannot hold`);
    credentials[name] = resolve(path);
  }
  if (!flags["allow-unauthenticated"]) credentials["webhook-secret"] ??= "/etc/hooksd/webhook-secret";

  const command = [bin, "serve"];
  for (const [flag, spec] of Object.entries(serveFlags)) {
    const value = absolute[flag as keyof ServeFlags];
    if (flag === "help" || flag in CREDENTIAL_FLAGS || value === undefined || value === false) continue;
    command.push(`--${flag}`);
    if (spec.type === "string") command.push(String(value));
  }
  const writablePaths = [absolute.repo, absolute["state-dir"]].filter((p): p is string => p !== undefined);
  return { command, writablePaths, credentials };
}

/**
 * Every target of a config file: its repos become writable. The file names its
 * own secret files, so no credential line is filled in; they may point at
 * /run/credentials/hooksd.service/NAME with LoadCredential= lines of your own.
 */
async function fromConfigFile(flags: ServeFlags, bin: string): Promise<UnitSettings> {
  const others = Object.keys(flags).filter((flag) => flag !== "config" && flag !== "help");
  if (others.length > 0) throw new ConfigError(`--${others[0]} cannot be combined with --config (set it in the config file)`);
  const config = resolve(flags.config!);
  const file = await readConfigFile(config);
  const writablePaths = [...file.targets.map((t) => t.repo), ...(file.state_dir ? [file.state_dir] : [])];
  return { command: [bin, "serve", "--config", config], writablePaths, credentials: {} };
}
