import { describe, expect, test } from "bun:test";
import { checkRefFormat, shortRefName } from "../../src/git/ref-format";

const MAX = 1024;
const heads = "refs/heads/";

// [name, valid?] — includes the hostile names a webhook payload might carry.
const table: [string, boolean][] = [
  ["refs/heads/main", true],
  ["refs/heads/feature/x-1", true],
  ["refs/tags/v1.2.3", true],
  ["refs/heads/日本語", true],
  ["refs/heads/@", true],
  ["refs/heads/a@b", true],
  ["refs/heads/{x}", true],
  ["refs/heads/a.b", true],
  ["refs/heads/x.lockx", true],
  ["refs/heads./x", true],
  ["refs/heads/-x", true],
  ["refs/heads/main;touch PWNED", false], // has a space
  ["refs/heads/main;touch${IFS}PWNED", true], // ';' and '$' are fine for git
  ["refs/heads/$(id)", true],
  ["refs/heads/`id`", true],
  ["refs/heads/../../etc/passwd", false],
  ["refs/heads/a..b", false],
  ["refs/heads/.hidden", false],
  ["refs/heads/a/.b", false],
  ["refs/heads/x.lock", false],
  ["refs/heads.lock/x", false],
  ["refs/heads/a b", false],
  ["refs/heads/a\u0000b", false],
  ["refs/heads/a\nb", false],
  ["refs/heads/a\tb", false],
  ["refs/heads/a\u007fb", false],
  ["refs/heads/@{u}", false],
  ["refs/heads/a@{1}", false],
  ["@", false],
  ["", false],
  ["main", false],
  ["refs/heads/", false],
  ["/refs/heads/x", false],
  ["refs//heads/x", false],
  ["refs/heads/x.", false],
  ["refs/heads/.", false],
  ["refs/heads/a~1", false],
  ["refs/heads/a^", false],
  ["refs/heads/a:b", false],
  ["refs/heads/a?", false],
  ["refs/heads/a*", false],
  ["refs/heads/a[b", false],
  ["refs/heads/a\\b", false],
  ["refs/heads/a\uD800b", false], // lone surrogate: not valid Unicode
  [heads + "a".repeat(MAX - heads.length), true], // exactly 1024 bytes
  [heads + "a".repeat(MAX - heads.length + 1), false],
  [heads + "日".repeat(338), false], // 349 UTF-16 units but 1025 bytes
  [heads + "x".repeat(100_000), false],
];

const byteLength = (s: string) => Buffer.byteLength(s, "utf8");

/** The real git's verdict; exit 0 = valid, 1 = invalid, anything else is a test bug. */
function gitAccepts(name: string): boolean {
  const { exitCode, stderr } = Bun.spawnSync(["git", "check-ref-format", name]);
  if (exitCode !== 0 && exitCode !== 1) throw new Error(`git check-ref-format ${JSON.stringify(name)}: ${stderr}`);
  return exitCode === 0;
}

// Names the native comparison cannot cover: argv cannot carry NUL or lone
// surrogates, and git parses a leading '-' as an option (it has no "--").
// Names over our byte cap are a deliberate difference, tested on their own.
const comparable = (name: string) =>
  !name.includes("\0") && name.isWellFormed() && !name.startsWith("-") && byteLength(name) <= MAX;

// Deterministic PRNG (mulberry32) so failures are reproducible.
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const alphabet = [".", "/", "@", "{", "~", "^", ":", "?", "*", "[", "\\", " ", ";", "a", "b", "lock", "-"];

function randomNames(count: number, seed: number): string[] {
  const next = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    let body = "";
    const length = 1 + Math.floor(next() * 8);
    for (let j = 0; j < length; j++) body += pick(alphabet);
    names.push(next() < 0.8 ? heads + body : body);
  }
  return names;
}

describe("checkRefFormat", () => {
  for (const [name, valid] of table) {
    const shown = JSON.stringify(name.length > 60 ? `${name.slice(0, 40)}…(${byteLength(name)} bytes)` : name);
    test(`it ${valid ? "accepts" : "rejects"} ${shown}`, () => {
      const reason = checkRefFormat(name);
      if (valid) expect(reason).toBeUndefined();
      else expect(reason).toBeString();
    });
  }

  test("it accepts ';' because git does, so the defence must be that no ref ever reaches a shell", () => {
    expect(checkRefFormat("refs/heads/main;rm")).toBeUndefined();
    expect(gitAccepts("refs/heads/main;rm")).toBe(true);
  });

  test("it gives a short human reason for each rule", () => {
    expect(checkRefFormat("refs/heads/a..b")).toBe("contains '..'");
    expect(checkRefFormat("refs/heads/x.lock")).toContain("'.lock'");
    expect(checkRefFormat("refs/heads/.x")).toContain("beginning with '.'");
    expect(checkRefFormat("refs/heads/a b")).toBe("has a control character or one of ' ~^:?*[\\'");
    expect(checkRefFormat("refs/heads/@{u}")).toBe("contains '@{'");
    expect(checkRefFormat("refs/heads/a\0b")).toBe("contains NUL");
    expect(checkRefFormat("main")).toBe("has no '/'");
    expect(checkRefFormat(heads + "a".repeat(MAX))).toBe("is longer than 1024 bytes");
  });

  test("it rejects values that are not strings, since payloads are untyped", () => {
    for (const value of [undefined, null, 42, ["refs/heads/x"], { toString: () => "refs/heads/x" }]) {
      expect(checkRefFormat(value as unknown as string)).toBe("is not a string");
    }
  });

  test("it rejects names over 1024 bytes even though git itself accepts them", () => {
    const long = heads + "a".repeat(MAX);
    expect(gitAccepts(long)).toBe(true);
    expect(checkRefFormat(long)).toBeString();
  });

  test("it agrees with the real git check-ref-format on the table and on 500 pseudo-random names", () => {
    const names = [...table.map(([name]) => name), ...randomNames(500, 0x5eed)].filter(comparable);
    expect(names.length).toBeGreaterThan(450);
    const disagreements = names
      .map((name) => ({ name, git: gitAccepts(name), ours: checkRefFormat(name) }))
      .filter(({ git, ours }) => git !== (ours === undefined));
    expect(disagreements).toEqual([]);
    // Guard against a generator that only produces one kind of name.
    const accepted = names.filter((name) => checkRefFormat(name) === undefined).length;
    expect(accepted).toBeGreaterThan(50);
    expect(names.length - accepted).toBeGreaterThan(50);
  }, 60_000);

  test("the table's expectations themselves match git where git can be asked", () => {
    for (const [name, valid] of table.filter(([name]) => comparable(name))) {
      expect({ name, valid: gitAccepts(name) }).toEqual({ name, valid });
    }
  }, 30_000);
});

describe("shortRefName", () => {
  test("it strips refs/heads/ and refs/tags/ for display", () => {
    expect(shortRefName("refs/heads/feature/x")).toBe("feature/x");
    expect(shortRefName("refs/tags/v1")).toBe("v1");
  });

  test("it leaves other refs unchanged", () => {
    expect(shortRefName("refs/notes/commits")).toBe("refs/notes/commits");
    expect(shortRefName("refs/heads")).toBe("refs/heads");
  });
});
