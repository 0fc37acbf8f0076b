/**
 * applyChanges on a big fresh tree, which it shares with the checkout thread
 * (checkout-thread.ts): the result, and how a failure in either half arrives.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { applyChanges } from "../../src/git/checkout.ts";
import { PackError } from "../../src/git/pack-error.ts";
import { openRepository } from "../../src/git/repository.ts";
import type { Change } from "../../src/git/tree-diff.ts";
import { commitFiles, createRemote, git, makeTempDir, removeTempDirs } from "../helpers/git-fixture.ts";

setDefaultTimeout(60_000);
afterAll(removeTempDirs);

const FILES = 2400; // above the size from which the tree is shared

async function repoWithBlob() {
  const { work } = await createRemote(await makeTempDir("checkout"), "src.git");
  const commit = await commitFiles(work, { "page.html": "<p>page</p>\n" }, "one");
  return { repo: await openRepository(work), blob: await git(work, "rev-parse", `${commit}:page.html`) };
}

function pages(blob: string): Change[] {
  return Array.from({ length: FILES }, (_, i) => ({ path: `d${String(Math.floor(i / 100)).padStart(2, "0")}/p${i}.html`, before: undefined, after: { mode: 0o100644, oid: blob } }));
}

describe("a big fresh checkout", () => {
  test("is written whole, with an index entry for every file, when both threads do their half", async () => {
    const { repo, blob } = await repoWithBlob();
    const dir = join(await makeTempDir("checkout-out"), "tree");

    const entries = await applyChanges(repo, dir, pages(blob), { clearObstacles: false, fresh: true });

    expect(entries.map((e) => e.path).sort()).toEqual(pages(blob).map((c) => c.path).sort());
    expect((await readdir(dir)).length).toBe(FILES / 100);
    expect(await readFile(join(dir, "d00/p0.html"), "utf8")).toBe("<p>page</p>\n");
    expect(await readFile(join(dir, `d23/p${FILES - 1}.html`), "utf8")).toBe("<p>page</p>\n");
  });

  test("fails with the helper thread's PackError when an object of its half is missing", async () => {
    const { repo, blob } = await repoWithBlob();
    const changes = pages(blob);
    const missing = "0123456789abcdef0123456789abcdef01234567";
    changes[5] = { ...changes[5]!, after: { mode: 0o100644, oid: missing } };

    const err = await applyChanges(repo, join(await makeTempDir("checkout-out"), "tree"), changes, { clearObstacles: false, fresh: true }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(PackError);
    expect((err as Error).message).toContain(missing);
  });

  test("fails with the system error's code when a file of the helper thread's half cannot be created", async () => {
    const { repo, blob } = await repoWithBlob();
    const changes = pages(blob);
    // A path below a file of the same half: its directory cannot be made.
    changes[7] = { ...changes[7]!, path: "d00/p0.html/inside.html" };

    const err = await applyChanges(repo, join(await makeTempDir("checkout-out"), "tree"), changes, { clearObstacles: false, fresh: true }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(Error);
    expect((err as NodeJS.ErrnoException).code).toMatch(/^(ENOTDIR|EEXIST|EISDIR)$/);
  });
});
