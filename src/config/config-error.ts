/** A bad flag, environment variable or config value: exit status 2, nothing done. */
export class ConfigError extends Error {
  readonly code = "CONFIG";
  override name = "ConfigError";
}
