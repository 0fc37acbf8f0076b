import { describe, expect, test } from "bun:test";
import { packChanges, unpackChanges } from "../../src/git/checkout-messages.ts";
import type { Change } from "../../src/git/tree-diff.ts";

const changes: Change[] = [
  { path: "index.html", before: undefined, after: { mode: 0o100644, oid: "a".repeat(40) } },
  { path: "bin/deploy.sh", before: undefined, after: { mode: 0o100755, oid: "b".repeat(40) } },
  { path: "docs/line\nbreak and ünïcode.txt", before: undefined, after: { mode: 0o100644, oid: "c".repeat(40) } },
  { path: "current", before: undefined, after: { mode: 0o120000, oid: "d".repeat(40) } },
];

describe("messages to and from the checkout thread", () => {
  test("changes cross packed and arrive equal, including a path with a line break, an executable and a symlink", () => {
    expect(structuredClone(unpackChanges(structuredClone(packChanges(changes))))).toEqual(changes);
  });

  test("no changes pack to nothing and arrive as none", () => {
    expect(unpackChanges(packChanges([]))).toEqual([]);
  });
});
