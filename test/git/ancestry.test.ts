/**
 * Ancestry and tag peeling read through our object store, so they must agree
 * with native git on full histories and answer "not known" at a shallow edge.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { fetchRef } from "../../src/git/fetch.ts";
import { initRepository, isAncestor, openRepository, peelToCommit } from "../../src/git/repository.ts";
import { commitFiles, createRemote, git, makeTempDir, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { gitServersPerTest } from "../helpers/git-server.ts";

setDefaultTimeout(60_000);
afterAll(removeTempDirs);
const serve = gitServersPerTest();

async function history() {
  const root = await makeTempDir("ancestry");
  const { work } = await createRemote(join(root, "repos"), "site.git");
  const a = await commitFiles(work, { "a.txt": "a\n" }, "a");
  await git(work, "checkout", "-q", "-b", "side");
  const side = await commitFiles(work, { "side.txt": "side\n" }, "side\n\nparent 0000000000000000000000000000000000000000");
  await git(work, "checkout", "-q", "main");
  const b = await commitFiles(work, { "b.txt": "b\n" }, "b");
  await git(work, "merge", "-q", "--no-ff", "-m", "merge", "side");
  const merge = await git(work, "rev-parse", "HEAD");
  return { root, work, a, side, b, merge };
}

describe("isAncestor", () => {
  test("agrees with git merge-base --is-ancestor on a history with a merge, whatever the commit messages say", async () => {
    const { work, a, side, b, merge } = await history();
    const repo = await openRepository(work);
    const commits = { a, side, b, merge };
    for (const [olderName, older] of Object.entries(commits)) {
      for (const [newerName, newer] of Object.entries(commits)) {
        const native = older !== newer && (await git(work, "merge-base", "--is-ancestor", older, newer).then(() => true, () => false));
        expect({ olderName, newerName, ours: await isAncestor(repo, older, newer) }).toEqual({ olderName, newerName, ours: native });
      }
    }
  });

  test("answers false at a shallow edge, where the older commit's history was never fetched", async () => {
    const { root, work, a, merge } = await history();
    await push(work);
    const server = await serve({ root: join(root, "repos") });
    const repo = await initRepository(join(root, "checkout"), server.url("site.git"));
    await fetchRef(repo, { url: server.url("site.git"), ref: "refs/heads/main", commit: undefined, authorization: undefined, timeoutSeconds: 30 });

    expect(await isAncestor(repo, a, merge)).toBe(false);
  });
});

describe("peelToCommit", () => {
  test("peels an annotated tag (and a tag of a tag) to its commit, and refuses a tree", async () => {
    const { work, b } = await history();
    await git(work, "tag", "-a", "-m", "v1", "v1", b);
    await git(work, "tag", "-a", "-m", "v1 again", "v1-again", "v1");
    const repo = await openRepository(work);

    expect(await peelToCommit(repo, await git(work, "rev-parse", "v1"))).toBe(b);
    expect(await peelToCommit(repo, await git(work, "rev-parse", "v1-again"))).toBe(b);
    expect(await peelToCommit(repo, b)).toBe(b);
    expect(peelToCommit(repo, await git(work, "rev-parse", `${b}^{tree}`))).rejects.toMatchObject({ code: "COMMIT_NOT_FOUND" });
  });
});
