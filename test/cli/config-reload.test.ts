import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { commitFiles, createRemote, expectTreeEquals, makeTempDir, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { startGitServer, type GitServer } from "../helpers/git-server.ts";
import { fixtureJson, forgeHeaders } from "../helpers/forge-deliveries.ts";

setDefaultTimeout(60_000);

const CLI = join(import.meta.dir, "../../src/cli.ts");
const BUN = process.execPath;

let server: GitServer;
let bare: string;
let commit: string;
let dir: string;

beforeAll(async () => {
  dir = await makeTempDir("reload");
  const root = join(dir, "repos");
  let work: string;
  ({ bare, work } = await createRemote(root, "site.git"));
  commit = await commitFiles(work, { "index.html": "<h1>hello</h1>\n" }, "one");
  await push(work, "main");
  server = await startGitServer({ root });
  await writeFile(join(dir, "a.secret"), "secret-a\n");
  await writeFile(join(dir, "b.secret"), "secret-b\n");
});

afterAll(async () => {
  await server.stop();
  await removeTempDirs();
});

function targetToml(name: string, secret: string, remote = server.url("site.git")): string {
  return `\n[[targets]]\nname = "${name}"\nrepo = "${dir}/${name}"\nremote = "${remote}"\nbranch = "main"\nsecret_files = ["${dir}/${secret}"]\n`;
}

const header = () => `listen = "127.0.0.1:0"\nstate_dir = "${dir}/state"\n`;

async function run(...args: string[]) {
  const proc = Bun.spawn([BUN, CLI, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, HOOKSD_SECRET: undefined } });
  const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  return { stdout, stderr, code };
}

describe("hooksd check", () => {
  test("a valid config exits 0 and names its targets", async () => {
    await writeFile(join(dir, "good.toml"), header() + targetToml("a", "a.secret") + targetToml("b", "b.secret"));
    expect(await run("check", "--config", join(dir, "good.toml"))).toEqual({ stdout: `${dir}/good.toml: ok (2 targets: a, b)\n`, stderr: "", code: 0 });
  });

  test("an invalid config exits 2 listing every problem by key", async () => {
    await writeFile(join(dir, "bad.toml"), header() + targetToml("a", "a.secret", "ftp://example.com/x.git") + targetToml("b", "b.secret").replace('branch = "main"', 'branch = ""'));
    const result = await run("check", "--config", join(dir, "bad.toml"));
    expect(result).toEqual({
      stdout: "",
      stderr:
        `${dir}/bad.toml: 2 problems\n` +
        "  targets[0].remote: must be an http:// or https:// URL (hooksd speaks git's smart HTTP)\n" +
        "  targets[1].branch: must not be empty\n",
      code: 2,
    });
  });

  test("check without --config, or serve with --config and --repo, is a usage error (exit 2)", async () => {
    const missing = await run("check");
    expect({ code: missing.code, stderr: missing.stderr }).toEqual({ code: 2, stderr: "hooksd: --config is required: the file to check\nRun 'hooksd --help' for usage.\n" });
    const both = await run("serve", "--config", join(dir, "good.toml"), "--repo", dir);
    expect({ code: both.code, stderr: both.stderr.split("\n")[0] }).toEqual({ code: 2, stderr: "hooksd: --repo cannot be combined with --config (set it in the config file)" });
  });
});

/** Reads a process's JSON log lines as they come. */
function logReader(stream: ReadableStream<Uint8Array>) {
  const lines: Array<Record<string, unknown>> = [];
  let ended = false;
  let wake = () => {};
  void (async () => {
    let buffer = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>)) {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        lines.push(JSON.parse(buffer.slice(0, newline)));
        buffer = buffer.slice(newline + 1);
      }
      wake();
    }
    ended = true;
    wake();
  })();
  return {
    lines,
    async waitFor(predicate: (line: Record<string, unknown>) => boolean, from = 0): Promise<Record<string, unknown>> {
      for (;;) {
        const found = lines.slice(from).find(predicate);
        if (found) return found;
        if (ended) throw new Error(`the process ended without logging the line waited for; its log:\n${lines.map((l) => JSON.stringify(l)).join("\n")}`);
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

async function githubPush(url: string, target: string, secret: string) {
  const json = await fixtureJson("github-push.json");
  Object.assign(json, { ref: "refs/heads/main", after: commit });
  json.head_commit.id = commit;
  const body = new TextEncoder().encode(JSON.stringify(json));
  return fetch(new URL(`hooks/${target}`, url), { method: "POST", headers: forgeHeaders("github", body, { secret }), body });
}

describe("SIGHUP", () => {
  test("a broken config is rejected with a log line and the old one keeps serving; a valid one is swapped in", async () => {
    const config = join(dir, "serve.toml");
    await writeFile(config, header() + targetToml("a", "a.secret"));
    const proc = Bun.spawn([BUN, CLI, "serve", "--config", config], { stdout: "pipe", stderr: "inherit" });
    try {
      const log = logReader(proc.stdout);
      const url = (await log.waitFor((l) => l.msg === "listening")).url as string;
      expect((await fetch(new URL("healthz", url))).status).toBe(200);

      await writeFile(config, header() + targetToml("a", "a.secret", "ftp://example.com/x.git") + targetToml("b", "b.secret"));
      let mark = log.lines.length;
      process.kill(proc.pid, "SIGHUP");
      const rejected = await log.waitFor((l) => l.msg === "config reload rejected; the previous config stays in force", mark);
      expect(rejected).toMatchObject({ level: "error", problems: ["targets[0].remote: must be an http:// or https:// URL (hooksd speaks git's smart HTTP)"] });

      // Still the old config: target a deploys with its secret, target b does not exist.
      const a = await githubPush(url, "a", "secret-a");
      expect(a.status).toBe(202);
      await log.waitFor((l) => l.msg === "deploy succeeded" && l.target === "a");
      await expectTreeEquals(join(dir, "a"), bare, commit);
      expect((await githubPush(url, "b", "secret-b")).status).toBe(404);

      await writeFile(config, header() + targetToml("a", "a.secret") + targetToml("b", "b.secret"));
      mark = log.lines.length;
      process.kill(proc.pid, "SIGHUP");
      expect(await log.waitFor((l) => l.msg === "config reloaded", mark)).toMatchObject({ targets: [{ name: "a" }, { name: "b" }] });
      expect((await githubPush(url, "b", "secret-a")).status).toBe(401);
      expect((await githubPush(url, "b", "secret-b")).status).toBe(202);
      await log.waitFor((l) => l.msg === "deploy succeeded" && l.target === "b");
      await expectTreeEquals(join(dir, "b"), bare, commit);
      expect(JSON.stringify(log.lines)).not.toMatch(/secret-a|secret-b/);
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  });
});
