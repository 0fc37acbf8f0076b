/**
 * A minimal Prometheus registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format (version 0.0.4). hooksd has a
 * handful of series, so a map per metric is all the machinery needed.
 */
export type Labels = Record<string, string>;

interface Metric {
  render(): string[];
}

export interface Counter {
  inc(labels: Labels, by?: number): void;
}

export interface Gauge {
  set(labels: Labels, value: number): void;
}

export interface Histogram {
  observe(labels: Labels, value: number): void;
}

export function createRegistry() {
  const metrics: Metric[] = [];

  function header(name: string, help: string, type: string): string[] {
    return [`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${name} ${type}`];
  }

  function simple(name: string, help: string, type: "counter" | "gauge") {
    const values = new Map<string, number>();
    metrics.push({ render: () => [...header(name, help, type), ...[...values].map(([labels, v]) => `${name}${labels} ${formatNumber(v)}`)] });
    return values;
  }

  return {
    counter(name: string, help: string): Counter {
      const values = simple(name, help, "counter");
      return { inc: (labels, by = 1) => values.set(formatLabels(labels), (values.get(formatLabels(labels)) ?? 0) + by) };
    },

    gauge(name: string, help: string): Gauge {
      const values = simple(name, help, "gauge");
      return { set: (labels, value) => values.set(formatLabels(labels), value) };
    },

    histogram(name: string, help: string, buckets: readonly number[]): Histogram {
      const series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
      metrics.push({
        render: () => [
          ...header(name, help, "histogram"),
          ...[...series.values()].flatMap(({ labels, counts, sum, count }) => [
            ...buckets.map((le, i) => `${name}_bucket${formatLabels({ ...labels, le: formatNumber(le) })} ${counts[i]}`),
            `${name}_bucket${formatLabels({ ...labels, le: "+Inf" })} ${count}`,
            `${name}_sum${formatLabels(labels)} ${formatNumber(sum)}`,
            `${name}_count${formatLabels(labels)} ${count}`,
          ]),
        ],
      });
      return {
        observe(labels, value) {
          const key = formatLabels(labels);
          const s = series.get(key) ?? { labels, counts: buckets.map(() => 0), sum: 0, count: 0 };
          series.set(key, s);
          // Buckets are cumulative: an observation counts in every bucket at or above it.
          buckets.forEach((le, i) => {
            if (value <= le) s.counts[i]!++;
          });
          s.sum += value;
          s.count++;
        },
      };
    },

    render: (): string => metrics.flatMap((m) => m.render()).join("\n") + "\n",
  };
}

export type Registry = ReturnType<typeof createRegistry>;

function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
  return pairs.length ? `{${pairs.join(",")}}` : "";
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (!Number.isFinite(n)) return n > 0 ? "+Inf" : "-Inf";
  return String(n);
}
