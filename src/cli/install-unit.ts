import { existsSync } from "node:fs";
import { rename, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import unitTemplate from "../../systemd/hooksd.service" with { type: "text" };
import { ConfigError } from "../config/config-error.ts";
import { renderUnit } from "../systemd/render-unit.ts";
import { installUnitFlags, parseFlags, serveFlags } from "./flags.ts";
import { parseListen } from "./listen.ts";

const UNIT_NAME = "hooksd.service";

/** Serve flags that become LoadCredential= lines instead of arguments: the unit names files, never secrets. */
const CREDENTIAL_FLAGS = { "secret-file": "webhook-secret", "credentials-file": "git-credentials" } as const;

/**
 * `hooksd install-unit`: writes systemd/hooksd.service (embedded in the
 * executable) with this command line's serve flags in ExecStart=, the site dir
 * writable and the secret files as credentials. It starts nothing.
 */
export async function installUnit(argv: string[]): Promise<number> {
  const flags = parseFlags(installUnitFlags, argv);
  if (!flags.repo) throw new ConfigError("--repo is required: the checkout the service deploys into");
  if (flags.listen !== undefined) parseListen(flags.listen);
  for (const [flag, value] of Object.entries(flags)) {
    if (typeof value === "string" && /[\x00-\x1f\x7f]/.test(value)) throw new ConfigError(`--${flag}: contains a control character, which a unit file cannot hold`);
  }
  const bin = flags.bin ?? "/usr/local/bin/hooksd";
  if (!bin.startsWith("/")) throw new ConfigError(`--bin: '${bin}' must be an absolute path`);
  const dest = resolve(flags.dest ?? "/etc/systemd/system");
  if (!(await stat(dest).catch(() => undefined))?.isDirectory()) throw new ConfigError(`--dest: ${dest} is not a directory`);

  // systemd starts the service in /, so paths are made absolute here.
  const absolute: Record<string, string | boolean | undefined> = {
    ...flags,
    repo: resolve(flags.repo),
    "state-dir": flags["state-dir"] && resolve(flags["state-dir"]),
  };
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
    const value = absolute[flag];
    if (flag === "help" || flag in CREDENTIAL_FLAGS || value === undefined || value === false) continue;
    command.push(`--${flag}`);
    if (spec.type === "string") command.push(String(value));
  }
  const writablePaths = [absolute.repo, absolute["state-dir"]].filter((p): p is string => typeof p === "string");
  const unit = renderUnit(unitTemplate, { command, writablePaths, credentials });

  const path = join(dest, UNIT_NAME);
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, unit, { mode: 0o644 });
  await rename(temp, path);

  const out = [`wrote ${path}`];
  // systemd refuses to start a unit whose credential sources or writable paths are missing.
  for (const [name, source] of Object.entries(credentials)) {
    if (!existsSync(source)) out.push(`note: ${source} (credential ${name}) does not exist yet; the service will not start without it`);
  }
  for (const dir of writablePaths) {
    if (!existsSync(dir)) out.push(`note: ${dir} does not exist yet; create it owned by the service's user (see systemd/tmpfiles.d/hooksd.conf)`);
  }
  out.push("then: systemctl daemon-reload && systemctl enable --now hooksd");
  process.stdout.write(out.join("\n") + "\n");
  return 0;
}
