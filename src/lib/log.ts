/**
 * @module Structured JSON logs: one JSON object per line on the console, which Workers
 * Logs / Logpush (production) and wrangler (dev) collect as is.
 *
 * Every line has `ts`, `level` and `msg`; a child logger adds fields such as
 * `request_id` to every line it writes. Never log secrets, signatures or bodies.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

/** Turns an unknown thrown value into loggable fields (message and stack). */
export function errorFields(error: unknown): LogFields {
  if (error instanceof Error) {
    return { error: error.message, error_name: error.name, stack: error.stack };
  }
  return { error: String(error) };
}

export function createLogger(level: LogLevel = "info", base: LogFields = {}): Logger {
  const write = (lineLevel: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[lineLevel] < RANK[level]) return;
    const line = JSON.stringify({ ts: new Date().toISOString(), level: lineLevel, msg, ...base, ...fields });
    if (lineLevel === "error") console.error(line);
    else if (lineLevel === "warn") console.warn(line);
    else console.log(line);
  };
  return {
    debug: (msg, fields) => write("debug", msg, fields),
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
    child: (fields) => createLogger(level, { ...base, ...fields }),
  };
}
