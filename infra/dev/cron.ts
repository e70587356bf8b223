/**
 * @module Cron triggers in local development. `wrangler dev` never fires the Worker's
 * crons; `npm start` fires them through miniflare's dev-only trigger endpoint
 * (`/cdn-cgi/local/scheduled`, absent in production), at the minutes they match.
 */

/** `crons` of a wrangler.toml section: by default the top level's (local development). */
export function devCrons(wranglerToml: string, table = "triggers"): string[] {
  const header = new RegExp(`^\\[${table.replaceAll(".", "\\.")}\\]\\s*\\n((?:(?!^\\[).*\\n?)*)`, "m");
  const section = header.exec(wranglerToml)?.[1] ?? "";
  const list = /^crons\s*=\s*\[([^\]]*)\]/m.exec(section)?.[1] ?? "";
  return [...list.matchAll(/"([^"]+)"/g)].map((m) => m[1] ?? "");
}

function fieldMatches(field: string, value: number): boolean {
  return field.split(",").some((part) => {
    const [range = "*", stepText] = part.split("/");
    const step = stepText ? Number(stepText) : 1;
    if (range === "*") return value % step === 0;
    const [from, to = from] = range.split("-").map(Number);
    return from !== undefined && to !== undefined && value >= from && value <= to && (value - from) % step === 0;
  });
}

/** Whether a five-field cron expression (`*`, lists, ranges, steps) matches `date` (UTC). */
export function cronMatches(expression: string, date: Date): boolean {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5) return false;
  const values = [
    date.getUTCMinutes(),
    date.getUTCHours(),
    date.getUTCDate(),
    date.getUTCMonth() + 1,
    date.getUTCDay(),
  ];
  return fields.every((field, i) => fieldMatches(field, values[i] ?? -1));
}

const OUTCOME_WAIT_MS = 5_000;

/**
 * Runs one cron in the local Worker (as if scheduled at `scheduledTime`, default now);
 * answers miniflare's outcome (`ok`, `exception`, …),
 * or `running` when none came within 5 s: after a run that used Postgres through the
 * local ws proxy, wrangler dev keeps the invocation open although the jobs are done
 * (their log lines say how they ended).
 */
export async function triggerCron(workerPort: number, cron: string, scheduledTime?: Date): Promise<string> {
  const time = scheduledTime ? `&time=${scheduledTime.getTime()}` : "";
  const url = `http://127.0.0.1:${workerPort}/cdn-cgi/local/scheduled?cron=${encodeURIComponent(cron)}${time}`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(OUTCOME_WAIT_MS) });
    return (await res.text()).trim();
  } catch (error) {
    if ((error as Error).name === "TimeoutError") return "running";
    throw error;
  }
}
