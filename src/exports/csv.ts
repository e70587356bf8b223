/**
 * @module The invocation CSV in upstream's exact format (the hourly export and
 * `/invocations/exports/recent`): the column lists, and records as Python's `csv.writer`
 * (default dialect) wrote them from upstream's rows: comma, minimal quoting (a field
 * holding `,`, `"`, CR or LF is quoted, quotes doubled), CRLF after every record, NULL as
 * an empty field, naive UTC datetimes as `str(datetime)` (the fraction only when the
 * microseconds are not zero), floats as `repr(float)`.
 *
 * Postgres renders the text fields and datetimes (`EXPORT_SELECT`), this module the
 * float. Pure, web-standard only: the Worker, the verifier CLI and the tests share it.
 */

/** An export file (CSV or manifest) that is not what the format says. */
export class ExportFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExportFormatError";
  }
}

/** Upstream's hourly export columns, in order (upstream-flows §2.1). */
export const EXPORT_COLUMNS = [
  "parent_invocation_id",
  "invocation_id",
  "chute_id",
  "chute_user_id",
  "function_name",
  "image_id",
  "image_user_id",
  "instance_id",
  "miner_uid",
  "miner_hotkey",
  "started_at",
  "completed_at",
  "error_message",
  "compute_multiplier",
  "bounty",
] as const;

/** `/invocations/exports/recent` has the same columns without `parent_invocation_id`. */
export const RECENT_COLUMNS = EXPORT_COLUMNS.slice(1);

export const CRLF = "\r\n";

/**
 * A text expression as one CSV field, quoted as Python's csv module does; NULL as empty.
 * Four `strpos` are about twice as fast in Postgres as one regular expression.
 */
const field = (expr: string) =>
  `coalesce(CASE WHEN strpos(${expr}, ',') + strpos(${expr}, '"') + strpos(${expr}, chr(13)) + strpos(${expr}, chr(10)) = 0
    THEN ${expr} ELSE '"' || replace(${expr}, '"', '""') || '"' END, '')`;

/** A timestamptz as `str(datetime)` of its naive UTC wall time: the fraction only when non-zero. */
const datetime = (column: string) => {
  const utc = `(${column} AT TIME ZONE 'UTC')`;
  return `CASE WHEN ${utc} = date_trunc('second', ${utc}) THEN to_char(${utc}, 'YYYY-MM-DD HH24:MI:SS')
    ELSE to_char(${utc}, 'YYYY-MM-DD HH24:MI:SS.US') END`;
};

/**
 * The SELECT list of an export row, formatted by Postgres as far as Postgres can:
 * `parent_invocation_id` as a CSV field; `invocation_id` … `error_message` as twelve CSV
 * fields joined by commas; `compute_multiplier` as float8 (Python's repr is made by
 * `formatRecord`); `bounty` as text. Four columns instead of fifteen: the driver parses
 * and allocates per column, and that was most of an export's cost in the Worker
 * (docs/benchmarks.md).
 */
export const EXPORT_SELECT = `${field("parent_invocation_id")},
  concat_ws(',', ${field("invocation_id")}, ${field("chute_id")}, ${field("chute_user_id")}, ${field("function_name")},
    ${field("image_id")}, ${field("image_user_id")}, ${field("instance_id")}, miner_uid::text, ${field("miner_hotkey")},
    ${datetime("started_at")}, coalesce(${datetime("completed_at")}, ''), ${field("error_message")}),
  compute_multiplier, bounty::text`;

/**
 * Python's `repr(float)`: the shortest digits that round-trip (what JavaScript's
 * `String(number)` also picks), laid out as Python does: positional with a `.0` when
 * the decimal exponent is in [-4, 16), otherwise `d.ddde±XX` with at least two exponent
 * digits; `inf`, `-inf`, `nan`, `-0.0`.
 */
export function pythonFloatRepr(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (value === Number.POSITIVE_INFINITY) return "inf";
  if (value === Number.NEGATIVE_INFINITY) return "-inf";
  if (value === 0) return Object.is(value, -0) ? "-0.0" : "0.0";
  const sign = value < 0 ? "-" : "";
  const [mantissa = "", exponentText = "0"] = String(Math.abs(value)).split("e");
  const [whole = "", fraction = ""] = mantissa.split(".");
  // value = 0.DIGITS × 10^point, with DIGITS free of leading and trailing zeros.
  let digits = whole + fraction;
  let point = whole.length + Number(exponentText);
  const leading = digits.length - digits.replace(/^0+/, "").length;
  digits = digits.slice(leading).replace(/0+$/, "");
  point -= leading;
  const exponent = point - 1;
  if (exponent < -4 || exponent >= 16) {
    const head = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const magnitude = String(Math.abs(exponent)).padStart(2, "0");
    return `${sign}${head}e${exponent < 0 ? "-" : "+"}${magnitude}`;
  }
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (digits.length <= point) return `${sign}${digits}${"0".repeat(point - digits.length)}.0`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** A row from `EXPORT_SELECT` (array mode). */
export type ExportRow = readonly unknown[];

// Multipliers repeat (one per chute), so their reprs are remembered; bounded, so an
// unusual hour cannot grow it without limit.
const reprs = new Map<number, string>();
function multiplierRepr(value: unknown): string {
  if (value === null || value === undefined) return "";
  const number = typeof value === "number" ? value : Number(value);
  let repr = reprs.get(number);
  if (repr === undefined) {
    if (reprs.size >= 4096) reprs.clear();
    repr = pythonFloatRepr(number);
    reprs.set(number, repr);
  }
  return repr;
}

/**
 * One CSV record (no terminator) from an `EXPORT_SELECT` row; `withParent` false drops
 * `parent_invocation_id` (the `recent` layout).
 */
export function formatRecord(row: ExportRow, withParent = true): string {
  const rest = `${row[1]},${multiplierRepr(row[2])},${row[3]}`;
  return withParent ? `${row[0]},${rest}` : rest;
}

/** The header record (no terminator). */
export function headerRecord(columns: readonly string[]): string {
  return columns.join(",");
}

/**
 * Splits one CSV record (no terminator) into fields, undoing minimal quoting. Used by the
 * verifier to read the invocation id of a receipt; null when the record is malformed.
 */
export function parseRecord(record: string): string[] | null {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (record[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        const quote = record.indexOf('"', i);
        if (quote < 0) return null;
        value += record.slice(i, quote);
        if (record[quote + 1] === '"') {
          value += '"';
          i = quote + 2;
          continue;
        }
        i = quote + 1;
        break;
      }
      fields.push(value);
    } else {
      const comma = record.indexOf(",", i);
      const end = comma < 0 ? record.length : comma;
      const value = record.slice(i, end);
      if (value.includes('"')) return null;
      fields.push(value);
      i = end;
    }
    if (i === record.length) return fields;
    if (record[i] !== ",") return null;
    i++;
    if (i === record.length) {
      fields.push("");
      return fields;
    }
  }
}
