/**
 * `hooksd deploy` from source, against a real git remote served over smart
 * HTTP: the tree on disk, the exit status, the JSON log lines, and that the
 * credentials are sent but never printed.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { commitFiles, createRemote, expectTreeEquals, git, makeTempDir, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { gitServersPerTest, type GitServerOptions } from "../helpers/git-server.ts";
import { cleanEnv, closedPort, parseJsonLines, runCliProcess, snapshot, type CliResult } from "./support.ts";

setDefaultTimeout(30_000);

const serveGit = gitServersPerTest();
afterAll(removeTempDirs);

/** A served remote "site.git" with one commit on main, and a native-git clone of it (when the server needs no auth). */
async function siteWithClone(auth?: GitServerOptions["auth"]) {
  const tmp = await makeTempDir("cli-deploy");
  const root = join(tmp, "repos");
  const { bare, work } = await createRemote(root, "site.git");
  const first = await commitFiles(work, { "index.html": "<h1>v1</h1>\n", "css/site.css": "body{}\n", "old.txt": "going away\n" }, "v1");
  await push(work);
  const server = await serveGit({ root, ...(auth ? { auth } : {}) });
  const checkout = join(tmp, "site");
  if (!auth) await git(tmp, "clone", "--quiet", server.url("site.git"), checkout);
  return { tmp, bare, work, first, server, checkout };
}

const deployCli = (args: string[]): Promise<CliResult> => runCliProcess(["deploy", ...args], cleanEnv());

/** Every stdout line is a JSON object with time, level and msg; returns them. */
function logLines(result: CliResult) {
  const lines = parseJsonLines(result.stdout);
  for (const line of lines) {
    expect(typeof line.time).toBe("string");
    expect(["info", "warn", "error"]).toContain(line.level as string);
    expect(typeof line.msg).toBe("string");
  }
  return lines;
}

describe("hooksd deploy (from source)", () => {
  test("it deploys the branch's new tip into an existing checkout, exits 0 and leaves git status clean", async () => {
    const { bare, work, first, checkout } = await siteWithClone();
    const second = await commitFiles(work, { "index.html": "<h1>v2</h1>\n", "old.txt": null, "js/app.js": { content: "run()\n", mode: 0o755 } }, "v2");
    await push(work);

    const result = await deployCli(["--repo", checkout]);

    expect({ exitCode: result.exitCode, stderr: result.stderr }).toEqual({ exitCode: 0, stderr: "" });
    await expectTreeEquals(checkout, bare, second);
    expect(await git(checkout, "rev-parse", "HEAD")).toBe(second);
    expect(await git(checkout, "status", "--porcelain")).toBe("");

    const logs = logLines(result);
    const started = logs.find((l) => l.msg === "deploy started");
    const succeeded = logs.find((l) => l.msg === "deploy succeeded");
    expect(started).toMatchObject({ level: "info", target: "site", ref: "refs/heads/main" });
    expect(succeeded).toMatchObject({ level: "info", target: "site", previous: first, commit: second, deploy: started?.deploy });
    const timings = succeeded?.timings as Record<string, unknown>;
    expect(typeof timings.fetch).toBe("number");
    expect(typeof timings.checkout).toBe("number");
  });

  test("with --remote and --branch it creates a missing DIR with the first deploy", async () => {
    const { tmp, bare, first, server } = await siteWithClone();
    const dir = join(tmp, "new", "site");

    const result = await deployCli(["--repo", dir, "--remote", server.url("site.git"), "--branch", "main"]);

    expect({ exitCode: result.exitCode, stderr: result.stderr }).toEqual({ exitCode: 0, stderr: "" });
    await expectTreeEquals(dir, bare, first);
    expect(await git(dir, "status", "--porcelain")).toBe("");
    expect(logLines(result).map((l) => l.msg)).toEqual(["deploy started", "deploy succeeded"]);
  });

  test("an unreachable remote is exit 1, a 'deploy failed' line, and DIR exactly as before", async () => {
    const { checkout } = await siteWithClone();
    const unreachable = `http://127.0.0.1:${await closedPort()}/site.git`;
    await git(checkout, "remote", "set-url", "origin", unreachable);
    const before = await snapshot(checkout);

    const result = await deployCli(["--repo", checkout, "--fetch-timeout", "10"]);

    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe("");
    const logs = logLines(result);
    expect(logs.map((l) => l.msg)).toEqual(["deploy started", "deploy failed"]);
    expect(logs[1]).toMatchObject({ level: "error", target: "site" });
    expect(String(logs[1]?.error)).toContain("127.0.0.1");
    expect(await snapshot(checkout)).toEqual(before);
  });

  test("a branch the remote does not have is exit 1 and DIR exactly as before", async () => {
    const { checkout } = await siteWithClone();
    const before = await snapshot(checkout);

    const result = await deployCli(["--repo", checkout, "--branch", "no-such-branch"]);

    expect(result.exitCode).toBe(1);
    expect(parseJsonLines(result.stdout).at(-1)).toMatchObject({ msg: "deploy failed" });
    expect(await snapshot(checkout)).toEqual(before);
  });

  describe("with a remote that needs credentials", () => {
    const auth = { username: "deployer", password: "glpat-Sup3rS3cret-987" };
    const encoded = Buffer.from(`${auth.username}:${auth.password}`).toString("base64");

    async function credentialsFile(dir: string, content: string): Promise<string> {
      const path = join(dir, "credentials");
      await writeFile(path, content, { mode: 0o600 });
      return path;
    }

    function expectNoSecretIn(result: CliResult) {
      for (const text of [auth.password, encoded]) {
        expect(result.stdout).not.toContain(text);
        expect(result.stderr).not.toContain(text);
      }
    }

    test("the credentials file is sent as basic auth, deploys twice, and the password is printed nowhere", async () => {
      const { tmp, bare, work, first, server } = await siteWithClone(auth);
      const creds = await credentialsFile(tmp, `${auth.username}:${auth.password}\n`);
      const dir = join(tmp, "site");

      const initial = await deployCli(["--repo", dir, "--remote", server.url("site.git"), "--branch", "main", "--credentials-file", creds]);
      expect({ exitCode: initial.exitCode, stderr: initial.stderr }).toEqual({ exitCode: 0, stderr: "" });
      await expectTreeEquals(dir, bare, first);
      expectNoSecretIn(initial);
      logLines(initial);

      // The second deploy takes the remote from DIR's origin, which holds no credentials.
      expect(await git(dir, "config", "remote.origin.url")).toBe(server.url("site.git"));
      expect(await Bun.file(join(dir, ".git/config")).text()).not.toContain(auth.password);
      const second = await commitFiles(work, { "index.html": "<h1>v2</h1>\n" }, "v2");
      await push(work);
      const again = await deployCli(["--repo", dir, "--credentials-file", creds]);
      expect(again.exitCode).toBe(0);
      await expectTreeEquals(dir, bare, second);
      expectNoSecretIn(again);
    });

    test("without a credentials file the deploy fails with exit 1", async () => {
      const { tmp, server } = await siteWithClone(auth);
      const result = await deployCli(["--repo", join(tmp, "site"), "--remote", server.url("site.git"), "--branch", "main"]);
      expect(result.exitCode).toBe(1);
      expect(parseJsonLines(result.stdout).at(-1)).toMatchObject({ msg: "deploy failed" });
      expect(String(parseJsonLines(result.stdout).at(-1)?.error)).toContain("401");
    });

    test("a wrong password fails with exit 1 and is printed nowhere either", async () => {
      const { tmp, server } = await siteWithClone(auth);
      const wrong = "glpat-Wr0ngWr0ng-123";
      const creds = await credentialsFile(tmp, `${auth.username}:${wrong}\n`);
      const result = await deployCli(["--repo", join(tmp, "site"), "--remote", server.url("site.git"), "--branch", "main", "--credentials-file", creds]);
      expect(result.exitCode).toBe(1);
      expect(result.stdout + result.stderr).not.toContain(wrong);
      expectNoSecretIn(result);
      logLines(result);
    });
  });
});
