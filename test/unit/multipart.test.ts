import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/lib/errors.ts";
import { multipartBoundary, parseMultipart, partText } from "../../src/lib/multipart.ts";
import { multipartBody } from "../support/chutes-cli.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const parse = (text: string, boundary = "b0undary") => parseMultipart(encode(text), boundary);
const failure = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return error as ApiError;
  }
  throw new Error("expected a failure");
};

describe("multipart/form-data", () => {
  it("reads the boundary from the content type, quoted or not", () => {
    expect(multipartBoundary("multipart/form-data; boundary=abc123")).toBe("abc123");
    expect(multipartBoundary('Multipart/Form-Data; charset=utf-8; boundary="a b"')).toBe("a b");
    expect(multipartBoundary("application/json")).toBeNull();
    expect(multipartBoundary("multipart/form-data")).toBeNull();
    expect(multipartBoundary(undefined)).toBeNull();
  });

  it("parses what aiohttp writes, files byte for byte, as views of the body", () => {
    const zip = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 13, 10, 45, 45, 0, 255]);
    const { body, contentType } = multipartBody([
      { name: "username", value: "alice" },
      { name: "readme", value: "héllo\r\nworld" },
      { name: "build_context", value: zip, filename: "chute.zip", contentType: "application/zip" },
    ]);
    const boundary = multipartBoundary(contentType) ?? "";
    const parts = parseMultipart(body, boundary);
    expect([...parts.keys()]).toEqual(["username", "readme", "build_context"]);
    expect(partText(parts.get("readme") ?? { name: "", filename: null, contentType: null, data: zip })).toBe(
      "héllo\r\nworld",
    );
    const file = parts.get("build_context");
    expect(file).toMatchObject({ filename: "chute.zip", contentType: "application/zip" });
    expect([...(file?.data ?? [])]).toEqual([...zip]);
    expect(file?.data.buffer).toBe(body.buffer);
  });

  it("ignores a preamble and an epilogue, and takes transport padding after a boundary", () => {
    const parts = parse(
      'ignored\r\n--b0undary  \r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b0undary--\r\nepilogue',
    );
    expect(partText(parts.get("a") ?? { name: "", filename: null, contentType: null, data: new Uint8Array() })).toBe(
      "1",
    );
  });

  it("refuses malformed bodies with a 400 that says what is wrong", () => {
    const cases: [string, RegExp][] = [
      ["no boundary here", /never occurs/],
      ['--b0undary\r\nContent-Disposition: form-data; name="a"\r\n\r\nunterminated', /closing boundary/],
      ["--b0undary\r\nContent-Disposition: attachment\r\n\r\nx\r\n--b0undary--", /not form-data/],
      ["--b0undary\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b0undary--", /no field name/],
      [
        '--b0undary\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b0undary\r\nContent-Disposition: form-data; name="a"\r\n\r\n2\r\n--b0undary--',
        /repeated/,
      ],
      ['--b0undaryX\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b0undary--', /line break/],
    ];
    for (const [text, message] of cases) {
      const error = failure(() => parse(text));
      expect(error).toBeInstanceOf(ApiError);
      expect(error.status).toBe(400);
      expect(error.detail).toMatch(message);
    }
  });

  it("caps the number of parts and refuses text that is not UTF-8", () => {
    const { body, contentType } = multipartBody(Array.from({ length: 3 }, (_, i) => ({ name: `f${i}`, value: "x" })));
    expect(failure(() => parseMultipart(body, multipartBoundary(contentType) ?? "", 2)).detail).toMatch(/more than 2/);
    const bad = { name: "a", filename: null, contentType: null, data: new Uint8Array([0xff, 0xfe]) };
    expect(failure(() => partText(bad)).detail).toMatch(/not UTF-8/);
  });
});
