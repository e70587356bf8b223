/**
 * @module A minimal Prometheus registry for `/metrics` (text format 0.0.4): counters,
 * gauges and one histogram family, with labels.
 */

type Labels = Record<string, string>;

const key = (labels: Labels) =>
  Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`)
    .join(",");

const braces = (inner: string) => (inner ? `{${inner}}` : "");

interface Family {
  help: string;
  type: "counter" | "gauge";
  values: Map<string, number>;
}

export const OP_SECONDS_BUCKETS = [0.05, 0.25, 1, 5, 15, 60, 180, 600];

export class Metrics {
  #families = new Map<string, Family>();
  #histogram = new Map<string, { buckets: number[]; sum: number; count: number }>();

  #family(name: string, help: string, type: Family["type"]): Family {
    let family = this.#families.get(name);
    if (!family) {
      family = { help, type, values: new Map() };
      this.#families.set(name, family);
    }
    return family;
  }

  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    const family = this.#family(name, help, "counter");
    family.values.set(key(labels), (family.values.get(key(labels)) ?? 0) + by);
  }

  set(name: string, help: string, value: number, labels: Labels = {}): void {
    this.#family(name, help, "gauge").values.set(key(labels), value);
  }

  /** Records one op duration in `gpu_agent_op_seconds`. */
  observeOp(op: string, seconds: number): void {
    const entry = this.#histogram.get(op) ?? { buckets: OP_SECONDS_BUCKETS.map(() => 0), sum: 0, count: 0 };
    OP_SECONDS_BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) entry.buckets[i] = (entry.buckets[i] ?? 0) + 1;
    });
    entry.sum += seconds;
    entry.count += 1;
    this.#histogram.set(op, entry);
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, family] of this.#families) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`);
      for (const [labels, value] of family.values) lines.push(`${name}${braces(labels)} ${value}`);
    }
    lines.push("# HELP gpu_agent_op_seconds Time to run one op on a device.", "# TYPE gpu_agent_op_seconds histogram");
    for (const [op, entry] of this.#histogram) {
      const base = key({ op });
      OP_SECONDS_BUCKETS.forEach((bound, i) => {
        lines.push(`gpu_agent_op_seconds_bucket{${base},le="${bound}"} ${entry.buckets[i]}`);
      });
      lines.push(`gpu_agent_op_seconds_bucket{${base},le="+Inf"} ${entry.count}`);
      lines.push(
        `gpu_agent_op_seconds_sum{${base}} ${entry.sum}`,
        `gpu_agent_op_seconds_count{${base}} ${entry.count}`,
      );
    }
    return `${lines.join("\n")}\n`;
  }
}
