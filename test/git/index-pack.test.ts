/**
 * Our pack indexer against packs made by native git: the .idx must come out
 * byte-identical to what `git index-pack` writes, whatever kind of deltas the
 * pack uses, and a thin pack completed by us must pass `git verify-pack`.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { copyFile, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fixThinPack } from "../../src/git/fix-thin-pack.ts";
import { indexPack } from "../../src/git/index-pack.ts";
import { openObjectStore } from "../../src/git/object-store.ts";
import { PackError } from "../../src/git/pack-error.ts";
import { encodePackIndex, parsePackIndex } from "../../src/git/pack-index.ts";
import { commitFiles, createRemote, git, makeTempDir, removeTempDirs, runGit } from "../helpers/git-fixture.ts";

setDefaultTimeout(60_000);
afterAll(removeTempDirs);

/** A repository whose history makes git store most versions as deltas: the same big files, edited a little each commit. */
async function repoWithHistory(): Promise<{ work: string; commits: string[] }> {
  const { work } = await makeTempDir("index-pack").then((root) => createRemote(root, "src.git"));
  const lines = Array.from({ length: 400 }, (_, i) => `line ${i}: ${"lorem ipsum dolor sit amet ".repeat(3)}\n`);
  const commits: string[] = [];
  for (let version = 0; version < 6; version++) {
    lines[version * 7] = `edited in version ${version}\n`;
    const files: Record<string, string> = {};
    for (let f = 0; f < 8; f++) files[`dir${f % 3}/page${f}.html`] = `<!-- page ${f} -->\n${lines.join("")}`;
    commits.push(await commitFiles(work, files, `version ${version}`));
  }
  return { work, commits };
}

/** Runs `git pack-objects` into `dir`; returns the pack's path (git writes its .idx beside it). */
async function nativePack(work: string, dir: string, revs: string, flags: string[]): Promise<string> {
  const { stdout } = await runGit(work, ["pack-objects", "--revs", "-q", ...flags, join(dir, "p")], { stdin: revs });
  return join(dir, `p-${new TextDecoder().decode(stdout).trim()}.pack`);
}

async function deltaCount(pack: string): Promise<number> {
  const out = await git(join(pack, ".."), "verify-pack", "-v", pack);
  // Delta lines carry two more columns: depth and base id.
  return out.split("\n").filter((line) => /^[0-9a-f]{40} \w+ +\d+ \d+ \d+ \d+ [0-9a-f]{40}$/.test(line)).length;
}

describe("indexPack", () => {
  test.each([
    ["offset deltas (OFS_DELTA)", ["--delta-base-offset"]],
    ["reference deltas (REF_DELTA)", []],
  ])("indexes a native pack with %s into an .idx byte-identical to git's", async (_kind, flags) => {
    const { work, commits } = await repoWithHistory();
    const dir = await makeTempDir("packs");
    const pack = await nativePack(work, dir, `${commits.at(-1)}\n`, flags);
    expect(await deltaCount(pack)).toBeGreaterThan(10);

    const indexed = await indexPack(pack);

    expect(indexed.missingBases).toEqual([]);
    const ours = encodePackIndex(indexed.entries, indexed.checksum);
    const theirs = await readFile(pack.replace(/\.pack$/, ".idx"));
    expect(Buffer.compare(Buffer.from(ours), theirs)).toBe(0);
  });

  test("finds every object of the pack at the offset git recorded", async () => {
    const { work, commits } = await repoWithHistory();
    const dir = await makeTempDir("packs");
    const pack = await nativePack(work, dir, `${commits.at(-1)}\n`, ["--delta-base-offset"]);
    const theirs = parsePackIndex(await readFile(pack.replace(/\.pack$/, ".idx")));
    const indexed = await indexPack(pack);
    expect(indexed.entries.length).toBe(theirs.count);
    for (const entry of indexed.entries) expect(theirs.find(Buffer.from(entry.oid).toString("hex"))).toBe(entry.offset);
    // And nothing else: an id one off in its last or its second byte (same fan-out bucket) is absent.
    for (const entry of indexed.entries) {
      for (const at of [19, 1]) {
        const near = Buffer.from(entry.oid);
        near[at] = near[at]! ^ 1;
        if (!indexed.entries.some((e) => Buffer.compare(e.oid, near) === 0)) expect(theirs.find(near.toString("hex"))).toBeUndefined();
      }
    }
  });

  test("completes a thin pack from the repository's objects so that git verify-pack accepts it", async () => {
    const { work, commits } = await repoWithHistory();
    const dir = await makeTempDir("packs");
    const copy = join(dir, "thin.pack");
    const { stdout } = await runGit(work, ["pack-objects", "--revs", "-q", "--thin", "--delta-base-offset", "--stdout"], { stdin: `${commits.at(-1)}\n^${commits.at(-2)}\n` });
    await writeFile(copy, stdout);
    const objects = openObjectStore(join(work, ".git"));

    // Without the repository the bases are nowhere: a clear error, not a broken index.
    expect(indexPack(copy)).rejects.toThrow(PackError);

    const indexed = await indexPack(copy, { external: (oid) => objects.read(oid).catch(() => undefined) });
    expect(indexed.missingBases.length).toBeGreaterThan(0);
    const fixed = await fixThinPack(copy, await Promise.all(indexed.missingBases.map((oid) => objects.read(oid))));
    const name = join(dir, `pack-${Buffer.from(fixed.checksum).toString("hex")}`);
    await copyFile(copy, `${name}.pack`);
    await writeFile(`${name}.idx`, encodePackIndex([...indexed.entries, ...fixed.entries], fixed.checksum));

    await git(dir, "verify-pack", `${name}.pack`);
    // And the completed pack indexes, by git and by us, to the same file.
    await git(dir, "index-pack", "-o", join(dir, "git.idx"), `${name}.pack`);
    expect(Buffer.compare(await readFile(join(dir, "git.idx")), await readFile(`${name}.idx`))).toBe(0);
  });

  test("refuses a pack with a corrupted byte instead of indexing it", async () => {
    const { work, commits } = await repoWithHistory();
    const dir = await makeTempDir("packs");
    const pack = await nativePack(work, dir, `${commits.at(-1)}\n`, []);
    const bytes = await readFile(pack);
    bytes[200] = bytes[200]! ^ 0xff;
    await writeFile(join(dir, "bad.pack"), bytes);
    expect(indexPack(join(dir, "bad.pack"))).rejects.toThrow(PackError);
    expect(await readdir(dir)).not.toContain("bad.idx");
  });
});
