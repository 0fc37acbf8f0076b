/**
 * applyChanges on a big fresh tree, which it shares with the checkout thread
 * (checkout-thread.ts): the result, and how a failure on that thread arrives.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { applyChanges } from "../../src/git/checkout.ts";
import { createCheckoutShare } from "../../src/git/checkout-share.ts";
import { checkOutOnHelperThread } from "../../src/git/checkout-thread.ts";
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
  test("is written whole, with an index entry for every file, by the two threads together", async () => {
    const { repo, blob } = await repoWithBlob();
    const dir = join(await makeTempDir("checkout-out"), "tree");

    const entries = await applyChanges(repo, dir, pages(blob), { clearObstacles: false, fresh: true });

    expect(entries.map((e) => e.path).sort()).toEqual(pages(blob).map((c) => c.path).sort());
    expect((await readdir(dir)).length).toBe(FILES / 100);
    expect(await readFile(join(dir, "d00/p0.html"), "utf8")).toBe("<p>page</p>\n");
    expect(await readFile(join(dir, `d23/p${FILES - 1}.html`), "utf8")).toBe("<p>page</p>\n");
  });

  // Which thread meets a bad file depends on which takes its chunk, so these
  // hand the whole tree to the helper thread, as if this one had none left.
  test("fails with the helper thread's PackError when an object is missing", async () => {
    const { repo, blob } = await repoWithBlob();
    const changes = pages(blob);
    const missing = "0123456789abcdef0123456789abcdef01234567";
    changes[5] = { ...changes[5]!, after: { mode: 0o100644, oid: missing } };

    const dir = join(await makeTempDir("checkout-out"), "tree");
    const err = await checkOutOnHelperThread(repo.gitdir, dir, changes, createCheckoutShare(changes.length)).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(PackError);
    expect((err as Error).message).toContain(missing);
  });

  test("fails with the system error's code when the helper thread cannot create a file", async () => {
    const { repo, blob } = await repoWithBlob();
    const changes = pages(blob);
    // A path below a file of the same chunk: its directory cannot be made.
    changes[7] = { ...changes[7]!, path: "d00/p0.html/inside.html" };

    const dir = join(await makeTempDir("checkout-out"), "tree");
    const err = await checkOutOnHelperThread(repo.gitdir, dir, changes, createCheckoutShare(changes.length)).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(Error);
    expect((err as NodeJS.ErrnoException).code).toMatch(/^(ENOTDIR|EEXIST|EISDIR)$/);
  });

  test("stops both threads at the first failure, whichever meets it, and reports it once both have stopped", async () => {
    const { repo, blob } = await repoWithBlob();
    const changes = pages(blob);
    const missing = "0123456789abcdef0123456789abcdef01234567";
    changes[FILES - 1] = { ...changes[FILES - 1]!, after: { mode: 0o100644, oid: missing } };
    changes[0] = { ...changes[0]!, after: { mode: 0o100644, oid: missing } };
    const dir = join(await makeTempDir("checkout-out"), "tree");

    const err = await applyChanges(repo, dir, changes, { clearObstacles: false, fresh: true }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(PackError);
    // The first chunk failed at its first file; no chunk was taken after that, so the last chunk's directory was never made.
    expect(await readdir(dir)).toContain("d00");
    expect(await readdir(dir)).not.toContain("d23");
  });
});
