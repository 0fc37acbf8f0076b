/**
 * One JSON object per line on stdout. Callers pass plain fields; secrets are
 * never passed here (they live only inside the verifier and the git client).
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

type Sink = (line: string) => void;

export function createLogger(sink: Sink = (line) => process.stdout.write(line)): Logger {
  const write = (level: string, msg: string, fields?: LogFields) =>
    sink(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + "\n");
  return {
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
  };
}

/** For tests and one-shot commands that want no output. */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
