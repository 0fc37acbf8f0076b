/**
 * Trees are parsed by our own reader now: names that some filesystem would
 * take for ".git" must be refused as git's verify_path() refuses them, and
 * ordinary trees must diff to exactly what git says changed.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { GitError } from "../../src/git/git-error.ts";
import { openRepository } from "../../src/git/repository.ts";
import { diffTrees, readTreeEntries } from "../../src/git/tree-diff.ts";
import { commitFiles, createRemote, git, makeTempDir, removeTempDirs, runGit } from "../helpers/git-fixture.ts";

setDefaultTimeout(60_000);
afterAll(removeTempDirs);

async function hashObject(repo: string, type: "blob" | "tree", body: Uint8Array | string): Promise<string> {
  const { stdout } = await runGit(repo, ["hash-object", "-w", "-t", type, "--literally", "--stdin"], { stdin: body });
  return new TextDecoder().decode(stdout).trim();
}

async function treeWith(repo: string, name: string): Promise<string> {
  const blob = await hashObject(repo, "blob", "payload\n");
  return hashObject(repo, "tree", Buffer.concat([Buffer.from(`100644 ${name}\0`), Buffer.from(blob, "hex")]));
}

describe("diffTrees", () => {
  test.each([".git.", ".GIT ", "git~1", ".git~2", ".g\u200cit", ".git::$INDEX_ALLOCATION", "a\\b", ".."])(
    "refuses a tree entry named %j with UNSAFE_TREE",
    async (name) => {
      const { work } = await makeTempDir("tree-diff").then((root) => createRemote(root, "src.git"));
      const tree = await treeWith(work, name);
      const repo = await openRepository(work);

      const err = await diffTrees(repo, undefined, tree).catch((e: unknown) => e);

      expect(err).toBeInstanceOf(GitError);
      expect((err as GitError).code).toBe("UNSAFE_TREE");
    },
  );

  test("accepts names that only look close to .git", async () => {
    const { work } = await makeTempDir("tree-diff").then((root) => createRemote(root, "src.git"));
    const repo = await openRepository(work);
    for (const name of [".github", "git", ".gitignore", "x.git", "git~0"]) {
      expect(await diffTrees(repo, undefined, await treeWith(work, name))).toHaveLength(1);
    }
  });

  test("lists exactly the paths git diff-tree reports, across nested directories, modes and symlinks", async () => {
    const { work } = await makeTempDir("tree-diff").then((root) => createRemote(root, "src.git"));
    const first = await commitFiles(work, { "a/b/c.txt": "1\n", "a/d.txt": "1\n", "run.sh": { content: "#!/bin/sh\n", mode: 0o755 }, "link": { symlink: "a/d.txt" }, "gone/x": "x\n" }, "one");
    const second = await commitFiles(work, { "a/b/c.txt": "2\n", "run.sh": { content: "#!/bin/sh\n", mode: 0o644 }, "link": { symlink: "run.sh" }, "gone/x": null, "new/y": "y\n" }, "two");
    const repo = await openRepository(work);
    const tree = async (commit: string) => git(work, "rev-parse", `${commit}^{tree}`);

    const changes = await diffTrees(repo, await tree(first), await tree(second));

    const ours = changes.map((c) => c.path).sort();
    const theirs = (await git(work, "diff-tree", "-r", "--name-only", first, second)).split("\n").sort();
    expect(ours).toEqual(theirs);
    const run = changes.find((c) => c.path === "run.sh")!;
    expect([run.before?.mode, run.after?.mode]).toEqual([0o100755, 0o100644]);
    expect(changes.find((c) => c.path === "link")!.after?.mode).toBe(0o120000);
  });
});

describe("readTreeEntries", () => {
  test("gives one tree object's entries in order, with their modes and ids, and refuses unsafe names like diffTrees", async () => {
    const { work } = await makeTempDir("tree-entries").then((root) => createRemote(root, "src.git"));
    const commit = await commitFiles(work, { "a/b.txt": "1\n", ".htaccess": "deny\n", "run.sh": { content: "#!/bin/sh\n", mode: 0o755 }, link: { symlink: "a/b.txt" } }, "one");
    const repo = await openRepository(work);
    const root = await git(work, "rev-parse", `${commit}^{tree}`);
    const ids = async (path: string) => git(work, "rev-parse", `${commit}:${path}`);

    expect(await readTreeEntries(repo, root)).toEqual([
      { name: ".htaccess", mode: 0o100644, oid: await ids(".htaccess") },
      { name: "a", mode: 0o040000, oid: await ids("a") },
      { name: "link", mode: 0o120000, oid: await ids("link") },
      { name: "run.sh", mode: 0o100755, oid: await ids("run.sh") },
    ]);
    const err = await readTreeEntries(repo, await treeWith(work, ".GIT.")).catch((e: unknown) => e);
    expect((err as GitError).code).toBe("UNSAFE_TREE");
  });

  test.each(["10064x", "", "1006440000", "+100644"])("refuses a mode %j as a corrupt tree instead of reading it as a file", async (mode) => {
    const { work } = await makeTempDir("tree-entries").then((root) => createRemote(root, "src.git"));
    const blob = await hashObject(work, "blob", "payload\n");
    const tree = await hashObject(work, "tree", Buffer.concat([Buffer.from(`${mode} name\0`), Buffer.from(blob, "hex")]));
    const repo = await openRepository(work);

    const err = await readTreeEntries(repo, tree).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(GitError);
    expect((err as GitError).code).toBe("UNSAFE_TREE");
    expect((err as GitError).message).toContain("corrupt");
  });
});
