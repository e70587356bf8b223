/**
 * @module LIKE patterns from user input: `%`, `_` and `\` are matched literally, so a
 * name filter is a plain substring search (no wildcards smuggled in by the caller).
 */

/** `ILIKE` pattern matching values that contain `text`. */
export function containing(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
