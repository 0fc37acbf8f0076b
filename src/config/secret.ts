/**
 * A value that must never reach a log line, an error message or a hook's
 * environment. Every way of turning it into text yields a placeholder; the
 * value itself is read only through `reveal()`, at the few places that need it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return "[secret]";
  }

  toJSON(): string {
    return "[secret]";
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "[secret]";
  }
}

/** Username and password (or deploy token) for the git remote, sent as HTTP basic auth. */
export interface Credentials {
  username: string;
  password: Secret;
}
