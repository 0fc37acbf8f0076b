/**
 * A strict reader of Prometheus' text exposition format (0.0.4), so tests can
 * check that /metrics is well formed and read values back from it.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/;

/** Throws with the line number and the reason at the first line that breaks the format. */
export function parseExposition(text: string): Exposition {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, i) => {
    const fail = (why: string) => {
      throw new Error(`line ${i + 1}: ${why}: ${JSON.stringify(line)}`);
    };
    const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (comment) {
      const [, kind, name, rest] = comment as unknown as [string, string, string, string];
      if (!new RegExp(`^${NAME}$`).test(name)) fail("bad metric name");
      const seen = kind === "HELP" ? help : types;
      if (seen.has(name)) fail(`second ${kind} for ${name}`);
      if (kind === "TYPE" && !["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) fail("unknown type");
      if (kind === "TYPE" && samples.some((s) => family(s.name, types) === name)) fail("TYPE after samples");
      seen.set(name, rest);
      return;
    }
    if (line.startsWith("#")) return;
    const match = SAMPLE.exec(line);
    if (!match) fail("not a sample line");
    const [, name, labelText = "", valueText] = match as unknown as [string, string, string | undefined, string];
    const labels: Record<string, string> = {};
    let rest = labelText;
    while (rest) {
      const label = LABEL.exec(rest);
      if (!label) fail("bad label");
      labels[label![1]!] = label![2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
      rest = rest.slice(label![0].length);
    }
    const value = valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : Number(valueText);
    if (Number.isNaN(value) && valueText !== "NaN") fail("bad value");
    if (!types.has(family(name, types))) fail(`sample before its TYPE line`);
    samples.push({ name, labels, value });
  });
  return { types, help, samples };
}

/** A histogram's _bucket/_sum/_count samples belong to the histogram's family. */
function family(name: string, types: Map<string, string>): string {
  const base = name.replace(/_(bucket|sum|count)$/, "");
  return base !== name && types.get(base) === "histogram" ? base : name;
}

/** The value of the one sample with this name and exactly these labels (undefined if absent). */
export function valueOf(exposition: Exposition, name: string, labels: Record<string, string>): number | undefined {
  const key = JSON.stringify(Object.entries(labels).sort());
  return exposition.samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === key)?.value;
}
