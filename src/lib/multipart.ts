/**
 * @module `multipart/form-data` bodies (RFC 7578) parsed from the raw bytes the route has
 * already read and hashed: hotkey signatures cover the SHA-256 of the whole encoded body,
 * boundaries included, so the bytes are read once and then parsed here.
 *
 * Parts are views into the body (`subarray`), never copies, so a build context costs its
 * size in memory once. Anything malformed is a 400 naming what is wrong.
 */
import { ApiError } from "./errors.ts";

export interface MultipartPart {
  name: string;
  /** Present on file fields. */
  filename: string | null;
  contentType: string | null;
  data: Uint8Array;
}

const CRLF = new Uint8Array([13, 10]);
const HEADER_END = new Uint8Array([13, 10, 13, 10]);
const MAX_HEADER_BYTES = 8 * 1024;
const decoder = new TextDecoder();

const malformed = (detail: string) => new ApiError("bad_request", `Malformed multipart body: ${detail}.`);

/** The boundary of a `multipart/form-data` Content-Type, or null when it is not one. */
export function multipartBoundary(contentType: string | null | undefined): string | null {
  const [type, ...params] = (contentType ?? "").split(";");
  if (type?.trim().toLowerCase() !== "multipart/form-data") return null;
  for (const param of params) {
    const eq = param.indexOf("=");
    if (param.slice(0, eq).trim().toLowerCase() !== "boundary") continue;
    const value = param
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, "$1");
    return /^[\x20-\x7e]{1,70}$/.test(value) ? value : null;
  }
  return null;
}

/** Where `needle` next occurs in `haystack` at or after `from`, or -1. */
function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  if (first === undefined) return from;
  const last = haystack.length - needle.length;
  for (let i = haystack.indexOf(first, from); i !== -1 && i <= last; i = haystack.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

const startsWith = (bytes: Uint8Array, at: number, prefix: Uint8Array) =>
  prefix.every((byte, i) => bytes[at + i] === byte);

/** `form-data; name="a"; filename="b.zip"` → {name: "a", filename: "b.zip"} (quoted or token values). */
function dispositionParams(value: string): Map<string, string> {
  const params = new Map<string, string>();
  const pattern = /;\s*([A-Za-z0-9_*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  for (const match of value.matchAll(pattern)) {
    const key = (match[1] ?? "").toLowerCase();
    const quoted = match[2];
    params.set(key, quoted !== undefined ? quoted.replace(/\\(.)/g, "$1") : (match[3] ?? ""));
  }
  return params;
}

function parseHeaders(block: Uint8Array): { name: string; filename: string | null; contentType: string | null } {
  let disposition: string | null = null;
  let contentType: string | null = null;
  for (const line of decoder.decode(block).split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw malformed("a part header line has no name");
    const header = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (header === "content-disposition") disposition = value;
    else if (header === "content-type") contentType = value;
  }
  if (!disposition || !/^form-data\s*(;|$)/i.test(disposition)) throw malformed("a part is not form-data");
  const params = dispositionParams(disposition);
  const name = params.get("name");
  if (!name) throw malformed("a part has no field name");
  return { name, filename: params.get("filename") ?? null, contentType };
}

/**
 * Splits `body` into its named parts. Field names must be unique; at most `maxParts`.
 * Text before the first boundary (a preamble) and after the last is ignored, as the RFC says.
 */
export function parseMultipart(body: Uint8Array, boundary: string, maxParts = 32): Map<string, MultipartPart> {
  const delimiter = new TextEncoder().encode(`--${boundary}`);
  const next = new TextEncoder().encode(`\r\n--${boundary}`);
  const first = startsWith(body, 0, delimiter) ? -2 : indexOfBytes(body, next, 0);
  if (first === -1) throw malformed("the boundary never occurs");
  let at = first + 2;
  const parts = new Map<string, MultipartPart>();
  for (;;) {
    at += delimiter.length;
    if (body[at] === 45 && body[at + 1] === 45) return parts; // "--": the closing delimiter
    // Transport padding (spaces, tabs) may follow a delimiter before its CRLF.
    while (body[at] === 32 || body[at] === 9) at++;
    if (!startsWith(body, at, CRLF)) throw malformed("a boundary is not followed by a line break");
    const headersStart = at + 2;
    const headersEnd = indexOfBytes(body, HEADER_END, headersStart);
    if (headersEnd === -1 || headersEnd - headersStart > MAX_HEADER_BYTES)
      throw malformed("a part's headers never end");
    const headers = parseHeaders(body.subarray(headersStart, headersEnd));
    const dataStart = headersEnd + HEADER_END.length;
    const dataEnd = indexOfBytes(body, next, dataStart);
    if (dataEnd === -1) throw malformed("the closing boundary is missing");
    if (parts.has(headers.name)) throw malformed(`the field ${JSON.stringify(headers.name)} is repeated`);
    if (parts.size === maxParts) throw malformed(`more than ${maxParts} parts`);
    parts.set(headers.name, { ...headers, data: body.subarray(dataStart, dataEnd) });
    at = dataEnd + 2;
  }
}

/** A text part as a string (UTF-8; invalid sequences are a 400). */
export function partText(part: MultipartPart): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(part.data);
  } catch {
    throw malformed(`the field ${JSON.stringify(part.name)} is not UTF-8 text`);
  }
}

/** The parts of a request body declared `multipart/form-data` by `contentType`; 415 for anything else. */
export function parseMultipartBody(
  contentType: string | null | undefined,
  body: Uint8Array,
): Map<string, MultipartPart> {
  const boundary = multipartBoundary(contentType);
  if (!boundary) throw new ApiError("unsupported_media_type", "This route takes multipart/form-data.");
  return parseMultipart(body, boundary);
}
