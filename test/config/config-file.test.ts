import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "../../src/config/config-error.ts";
import { loadConfigFile } from "../../src/config/load-config-file.ts";
import { makeTempDir, removeTempDirs } from "../helpers/git-fixture.ts";

afterAll(removeTempDirs);

async function setup() {
  const dir = await makeTempDir("config");
  await writeFile(join(dir, "a.secret"), "first-secret\n");
  await writeFile(join(dir, "a-next.secret"), "second-secret\n");
  await writeFile(join(dir, "gitlab.token"), "whsec_c2lnbmluZw==\n");
  await writeFile(join(dir, "credentials"), "deploy:token-value\n");
  await writeFile(join(dir, "empty.secret"), "");
  return dir;
}

function validToml(dir: string): string {
  return `listen = "127.0.0.1:9001"
state_dir = "${dir}/state"

[[targets]]
name = "www"
repo = "${dir}/www"
remote = "https://git.example.com/team/www.git"
branch = "main"
secret_files = ["${dir}/a.secret", "${dir}/a-next.secret"]
credentials_file = "${dir}/credentials"
force = true
fetch_timeout = 30

[[targets]]
name = "docs"
repo = "${dir}/docs"
remote = "https://gitlab.example.com/team/docs.git"
ref = "refs/tags/v*"
signing_token_files = ["${dir}/gitlab.token"]
`;
}

async function problemsOf(path: string): Promise<string[]> {
  try {
    await loadConfigFile(path);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error("expected the config to be rejected");
}

describe("config files", () => {
  test("a TOML file with several targets loads, with every secret read into a Secret that never prints", async () => {
    const dir = await setup();
    await writeFile(join(dir, "hooksd.toml"), validToml(dir));
    const config = await loadConfigFile(join(dir, "hooksd.toml"));
    expect(config.listen).toEqual({ host: "127.0.0.1", port: 9001 });
    expect(config.stateDir).toBe(`${dir}/state`);
    expect(config.targets.map((t) => [t.name, t.refs, t.strategy, t.force, t.fetchTimeoutSeconds])).toEqual([
      ["www", "refs/heads/main", "in-place", true, 30],
      ["docs", "refs/tags/v*", "in-place", false, 600],
    ]);
    const [www, docs] = config.targets;
    expect(www!.secrets.map((s) => s.reveal())).toEqual(["first-secret", "second-secret"]);
    expect(www!.credentials?.password.reveal()).toBe("token-value");
    expect(docs!.signingTokens.map((s) => s.reveal())).toEqual(["whsec_c2lnbmluZw=="]);
    const printed = JSON.stringify(config) + Bun.inspect(config);
    for (const value of ["first-secret", "second-secret", "token-value", "whsec_c2lnbmluZw=="]) expect(printed).not.toContain(value);
    // Loading only reads: the checkouts and the state dir are created by serve and the first deploy.
    expect([existsSync(`${dir}/www`), existsSync(`${dir}/state`)]).toEqual([false, false]);
  });

  test("the same config as JSON loads the same", async () => {
    const dir = await setup();
    const fromToml = Bun.TOML.parse(validToml(dir));
    await writeFile(join(dir, "hooksd.json"), JSON.stringify(fromToml));
    const config = await loadConfigFile(join(dir, "hooksd.json"));
    expect(config.targets.map((t) => t.name)).toEqual(["www", "docs"]);
  });

  test("every schema problem is reported at once, each naming its key", async () => {
    const dir = await setup();
    const toml = `listen = "localhost"
colour = "blue"

[[targets]]
name = "www"
repo = "relative/www"
remote = "https://git.example.com/www.git"
branch = "main"
secret_files = ["${dir}/a.secret"]
fetch_timeout = "30"

[[targets]]
name = "bad name!"
repo = "${dir}/docs"
remote = "ssh://example.com/docs.git"
ref = "refs/notes/x"
secret_files = []
`;
    await writeFile(join(dir, "bad.toml"), toml);
    expect((await problemsOf(join(dir, "bad.toml"))).sort()).toEqual(
      [
        "listen: must be HOST:PORT, e.g. 127.0.0.1:8000",
        "colour: unknown key",
        "targets[0].repo: must be an absolute path",
        "targets[0].fetch_timeout: must be number, not \"30\"",
        "targets[1].name: must be 1-64 letters, digits, '.', '_' or '-'",
        "targets[1].remote: must be an http:// or https:// URL (hooksd speaks git's smart HTTP)",
        "targets[1].ref: must start with refs/heads/ or refs/tags/",
        "targets[1].secret_files: must list at least one file",
      ].sort(),
    );
  });

  test("problems across targets name the target and key: duplicates, overlaps, refs, secrets and unreadable files", async () => {
    const dir = await setup();
    await mkdir(join(dir, "occupied"));
    await writeFile(join(dir, "occupied", "index.html"), "not a checkout");
    const toml = `state_dir = "${dir}/state"

[[targets]]
name = "www"
repo = "${dir}/www"
remote = "https://git.example.com/www.git"
branch = "main"
ref = "refs/heads/main"
secret_files = ["${dir}/a.secret", "${dir}/missing.secret"]

[[targets]]
name = "www"
repo = "${dir}/www/inner"
remote = "https://git.example.com/www.git"

[[targets]]
name = "occupied"
repo = "${dir}/occupied"
remote = "https://git.example.com/o.git"
branch = "bad..name"
secret_files = ["${dir}/empty.secret"]
`;
    await writeFile(join(dir, "bad.toml"), toml);
    expect(await problemsOf(join(dir, "bad.toml"))).toEqual([
      "targets[0]: give branch or ref, not both",
      "targets[1].name: 'www' is already the name of targets[0]",
      `targets[1].repo: ${dir}/www/inner overlaps targets[0].repo`,
      `targets[1].branch: is required (or ref, e.g. "refs/tags/v*")`,
      "targets[1].secret_files: is required (or set allow_unauthenticated = true to accept unsigned deliveries)",
      "targets[2].branch: 'bad..name' is not a valid branch name",
      `targets[2].repo: ${dir}/occupied is neither a git checkout nor empty; refusing to deploy over it`,
    ]);

    const unreadable = toml.replace(/\n\[\[targets\]\]\nname = "www"\nrepo = "[^"]*\/inner"[\s\S]*$/, "").replace('ref = "refs/heads/main"\n', "");
    await writeFile(join(dir, "unreadable.toml"), `${unreadable}\n[[targets]]\nname = "e"\nrepo = "${dir}/e"\nremote = "https://x.example/e.git"\nbranch = "main"\nsecret_files = ["${dir}/empty.secret"]\n`);
    expect(await problemsOf(join(dir, "unreadable.toml"))).toEqual([
      `targets[0].secret_files[1]: cannot read ${dir}/missing.secret (ENOENT)`,
      `targets[1].secret_files[0]: ${dir}/empty.secret is empty`,
    ]);
  });

  test("allow_unauthenticated lets a target go without secret files", async () => {
    const dir = await setup();
    await writeFile(join(dir, "open.toml"), `allow_unauthenticated = true\nstate_dir = "${dir}/s"\n[[targets]]\nname = "w"\nrepo = "${dir}/w"\nremote = "http://127.0.0.1:1/w.git"\nbranch = "*"\n`);
    const config = await loadConfigFile(join(dir, "open.toml"));
    expect(config.targets.map((t) => [t.refs, t.secrets.length])).toEqual([["refs/heads/*", 0]]);
  });

  test("a file that is not TOML, not JSON, or not there is a problem naming --config", async () => {
    const dir = await setup();
    await writeFile(join(dir, "broken.toml"), "targets = [\n");
    await writeFile(join(dir, "hooksd.yaml"), "targets: []\n");
    expect((await problemsOf(join(dir, "broken.toml")))[0]).toStartWith(`--config: ${dir}/broken.toml is not valid TOML`);
    expect(await problemsOf(join(dir, "hooksd.yaml"))).toEqual([`--config: ${dir}/hooksd.yaml must be a .toml or .json file`]);
    expect(await problemsOf(join(dir, "nope.toml"))).toEqual([`--config: cannot read ${dir}/nope.toml (ENOENT)`]);
  });
});
