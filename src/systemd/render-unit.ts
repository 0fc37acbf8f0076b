import { ConfigError } from "../config/config-error.ts";

/** What `hooksd install-unit` fills into systemd/hooksd.service. Paths are absolute. */
export interface UnitSettings {
  /** The executable and its arguments, e.g. [/usr/local/bin/hooksd, serve, --repo, /srv/www/site]. */
  command: string[];
  /** Paths the service may write besides its state dir and private /tmp. */
  writablePaths: string[];
  /** LoadCredential= sources by credential name; the unit holds paths, never secrets. */
  credentials: Record<string, string>;
}

/**
 * Directories ProtectHome=yes makes inaccessible: a path below them cannot be
 * reopened with ReadWritePaths=, so such a site gets an empty tmpfs there with
 * only itself bound in (ProtectHome=tmpfs + BindPaths=).
 */
const HOME_DIRS = ["/home", "/root", "/run/user"];

/**
 * Rewrites the template's ExecStart=, ReadWritePaths= and LoadCredential=
 * lines; every other line (the sandbox) is kept as shipped.
 */
export function renderUnit(template: string, settings: UnitSettings): string {
  const underHome = settings.writablePaths.filter((p) => HOME_DIRS.some((home) => p === home || p.startsWith(`${home}/`)));
  const elsewhere = settings.writablePaths.filter((p) => !underHome.includes(p));
  const lines = template.split("\n");

  const replace = (pattern: RegExp, replacement: string[]) => {
    const index = lines.findIndex((line) => pattern.test(line));
    // The template ships with this file; a missing line is a bug here, not a user error.
    if (index < 0) throw new Error(`systemd/hooksd.service has no line matching ${pattern}`);
    lines.splice(index, 1, ...replacement);
  };

  replace(/^ExecStart=/, [`ExecStart=${settings.command.map(quoteExecArg).join(" ")}`]);
  const writable = [...(elsewhere.length ? [`ReadWritePaths=${elsewhere.map(quotePath).join(" ")}`] : [])];
  if (underHome.length) writable.push(`BindPaths=${underHome.map(quotePath).join(" ")}`);
  replace(/^ReadWritePaths=/, writable);
  if (underHome.length) replace(/^ProtectHome=yes$/, ["ProtectHome=tmpfs"]);

  for (const name of ["webhook-secret", "git-credentials"]) {
    const source = settings.credentials[name];
    const line = new RegExp(`^#?LoadCredential=${name}:`);
    replace(line, source === undefined ? [`#LoadCredential=${name}:/etc/hooksd/${name}`] : [`LoadCredential=${name}:${credentialSource(name, source)}`]);
  }
  return lines.join("\n");
}

/** One word of ExecStart=: `%` starts a specifier and `$` a variable, so both are doubled. */
function quoteExecArg(arg: string): string {
  return quoteWord(arg.replaceAll("%", "%%").replaceAll("$", "$$$$"));
}

/** One path of ReadWritePaths=/BindPaths=: specifiers are expanded, variables are not. */
function quotePath(path: string): string {
  return quoteWord(path.replaceAll("%", "%%"));
}

function quoteWord(word: string): string {
  rejectControl(word);
  if (word !== "" && !/[\s"'\\;]/.test(word)) return word;
  return `"${word.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** LoadCredential= takes the rest of the line verbatim: no quoting is possible, so no whitespace either. */
function credentialSource(name: string, path: string): string {
  rejectControl(path);
  if (/\s/.test(path)) throw new ConfigError(`the ${name} file '${path}' contains whitespace, which LoadCredential= cannot hold`);
  return path.replaceAll("%", "%%");
}

function rejectControl(value: string): void {
  // A newline would end the directive and start a new one of the caller's choosing.
  if (/[\x00-\x1f\x7f]/.test(value)) throw new ConfigError(`'${value.replace(/[\x00-\x1f\x7f]/g, "?")}' contains a control character, which a unit file cannot hold`);
}
