/** A bad flag, environment variable or config value: exit status 2, nothing done. */
export class ConfigError extends Error {
  readonly code = "CONFIG";
  override name = "ConfigError";

  /** One line per problem, each naming its flag or key. */
  readonly problems: string[];

  constructor(problems: string | string[]) {
    const list = typeof problems === "string" ? [problems] : problems;
    super(list.join("; "));
    this.problems = list;
  }
}
