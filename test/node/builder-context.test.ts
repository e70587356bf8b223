/**
 * The builder's context extraction (infra/builder/zip.ts) against real archives: what the
 * CLI uploads unpacks with its modes, and every hostile or broken shape is refused with a
 * sentence before anything lands outside the directory.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ContextError, extractContext } from "../../infra/builder/zip.ts";
import { makeZip } from "../support/zip.ts";

const limits = { maxBytes: 1024 * 1024, maxEntries: 100 };
const dirs: string[] = [];
const fresh = () => {
  const dir = mkdtempSync(path.join(tmpdir(), "ctx-test-"));
  dirs.push(dir);
  return path.join(dir, "context");
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("build context extraction", () => {
  it("unpacks stored and deflated files, directories and executable bits", () => {
    const root = fresh();
    const zip = makeZip([
      { name: "app/", mode: 0o40755 },
      { name: "app/main.py", data: "print('hi')\n" },
      { name: "run.sh", data: "#!/bin/sh\n", mode: 0o100755, store: true },
    ]);
    expect(extractContext(zip, root, limits)).toBe(2);
    expect(readFileSync(path.join(root, "app/main.py"), "utf8")).toBe("print('hi')\n");
    expect(statSync(path.join(root, "run.sh")).mode & 0o111).not.toBe(0);
    expect(statSync(path.join(root, "app/main.py")).mode & 0o111).toBe(0);
  });

  it("accepts the empty archive", () => {
    expect(extractContext(makeZip([]), fresh(), limits)).toBe(0);
  });

  it.each([
    ["a parent escape", "../evil.txt", /escapes its directory/],
    ["a nested escape", "a/../../evil.txt", /escapes its directory/],
    ["an absolute path", "/etc/evil", /unsafe path/],
    ["a backslash path", "..\\evil", /unsafe path/],
    ["a drive letter", "C:/evil", /unsafe path/],
  ])("refuses %s", (_label, name, message) => {
    const root = fresh();
    expect(() => extractContext(makeZip([{ name, data: "x" }]), root, limits)).toThrow(message);
    expect(existsSync(path.join(root, "..", "evil.txt"))).toBe(false);
  });

  it("refuses symbolic links, duplicates, too many entries and too many bytes", () => {
    const link = makeZip([{ name: "link", data: "/etc/passwd", mode: 0o120777 }]);
    expect(() => extractContext(link, fresh(), limits)).toThrow(/symbolic link/);
    const twice = makeZip([
      { name: "a", data: "1" },
      { name: "a", data: "2" },
    ]);
    expect(() => extractContext(twice, fresh(), limits)).toThrow(/twice/);
    const many = makeZip(Array.from({ length: 101 }, (_, i) => ({ name: `f${i}`, data: "x" })));
    expect(() => extractContext(many, fresh(), limits)).toThrow(/101 entries/);
    const big = makeZip([{ name: "big", data: Buffer.alloc(limits.maxBytes + 1) }]);
    expect(() => extractContext(big, fresh(), limits)).toThrow(/unpacks to \d+ bytes/);
  });

  it("refuses an entry that inflates to more than it declares (a zip bomb's lie) and damaged archives", () => {
    const lying = makeZip([{ name: "bomb", data: Buffer.alloc(500_000), declaredSize: 10 }]);
    expect(() => extractContext(lying, fresh(), limits)).toThrow(ContextError);
    expect(() => extractContext(Buffer.from([0x50, 0x4b, 3, 4, 1, 2, 3]), fresh(), limits)).toThrow(
      /not a valid zip archive/,
    );
    const truncated = makeZip([{ name: "a", data: "hello world" }]);
    expect(() => extractContext(truncated.subarray(0, 20), fresh(), limits)).toThrow(/not a valid zip archive/);
  });
});
