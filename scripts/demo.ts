/**
 * `npm run demo`: the whole job, end to end, on this machine.
 *
 * A local git server (native `git http-backend`, playing the forge) hosts a
 * small site; hooksd serves a checkout of it; a commit is pushed and a
 * GitLab-format delivery, with its secret token, is sent to hooksd, which
 * answers at once and deploys in the background. Everything lives in a
 * temporary directory that is removed at the end (pass --keep to look at it).
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startGitServer } from "../test/helpers/git-server.ts";
import { commitFiles, createRemote, git, makeTempDir, push, removeTempDirs } from "../test/helpers/git-fixture.ts";

const keep = process.argv.includes("--keep");
const say = (text: string) => console.log(`\n\x1b[1m▶ ${text}\x1b[0m`);

if (!Bun.which("git")) {
  console.error("The demo's git server (the forge stand-in) needs the git binary: apt-get install git. hooksd itself does not.");
  process.exit(1);
}

const root = await makeTempDir("demo");
const forge = join(root, "forge");
say(`A forge stand-in serving ${forge} over smart HTTP`);
const { work } = await createRemote(forge, "site.git");
await commitFiles(work, { "index.html": "<h1>Hello</h1>\n", "css/site.css": "h1 { color: teal }\n" }, "First version of the site");
await push(work, "main");
const server = await startGitServer({ root: forge });
const remote = server.url("site.git");
console.log(`remote: ${remote}`);

say("An existing checkout of the site, as /home/www/test was");
const www = join(root, "www");
await git(root, "clone", "--quiet", remote, www);
await writeFile(join(www, ".env"), "UNTRACKED=kept\n"); // untracked files survive deploys
console.log(`${www}: ${await git(www, "log", "--oneline", "-1")}`);

const secretFile = join(root, "webhook-secret");
const secret = crypto.randomUUID();
await writeFile(secretFile, `${secret}\n`, { mode: 0o600 });
await mkdir(join(root, "state"));

say("hooksd serve --repo www --secret-file webhook-secret");
const daemon = Bun.spawn(
  ["bun", join(import.meta.dir, "../src/cli.ts"), "serve", "--repo", www, "--secret-file", secretFile, "--listen", "127.0.0.1:0", "--state-dir", join(root, "state")],
  { stdout: "pipe", stderr: "inherit" },
);
const url = await echoLogsUntilListening(daemon.stdout);

say("A developer pushes a change");
const before = await git(work, "rev-parse", "HEAD");
const after = await commitFiles(work, { "index.html": "<h1>Hello, deployed by hooksd</h1>\n", "about.html": "<p>About us</p>\n" }, "Update the home page");
await push(work, "main");
console.log(`pushed ${before.slice(0, 7)}..${after.slice(0, 7)}`);

say("GitLab sends its Push Hook delivery");
const started = performance.now();
const answer = await fetch(url, {
  method: "POST",
  headers: {
    "Content-Type": "application/json",
    "X-Gitlab-Event": "Push Hook",
    "X-Gitlab-Token": secret,
    "Idempotency-Key": crypto.randomUUID(),
  },
  body: JSON.stringify({
    object_kind: "push",
    ref: "refs/heads/main",
    before,
    after,
    checkout_sha: after,
    project: { git_http_url: remote },
  }),
});
console.log(`HTTP ${answer.status} in ${(performance.now() - started).toFixed(1)} ms: ${await answer.text()}`);

say("The deploy runs in the background; GET /status");
const status = await waitForDeploy(new URL("/status", url));
console.log(JSON.stringify(status, null, 2));

say("The site now serves the pushed commit");
console.log(`www/index.html: ${(await readFile(join(www, "index.html"), "utf8")).trim()}`);
console.log(`www/about.html: ${(await readFile(join(www, "about.html"), "utf8")).trim()}`);
console.log(`www/.env (untracked, untouched): ${(await readFile(join(www, ".env"), "utf8")).trim()}`);
console.log(`native git in www: ${await git(www, "log", "--oneline", "-1")}; status: ${(await git(www, "status", "--porcelain", "--untracked-files=no")) || "clean"}`);

daemon.kill("SIGTERM");
await daemon.exited;
await server.stop();
if (keep) console.log(`\nKept ${root}`);
else await removeTempDirs();
const ok = (status as { targets: { deployedCommit?: string }[] }).targets[0]?.deployedCommit === after;
say(ok ? "Demo finished: the push was deployed." : "Demo failed: the pushed commit is not deployed.");
process.exit(ok ? 0 : 1);

async function echoLogsUntilListening(stdout: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stdout.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let url: string | undefined;
  const pump = async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        console.log(`  \x1b[2mhooksd │ ${line}\x1b[0m`);
        url ??= (JSON.parse(line) as { msg: string; url?: string }).msg === "listening" ? JSON.parse(line).url : undefined;
      }
    }
  };
  void pump();
  for (let i = 0; i < 200 && !url; i++) await Bun.sleep(25);
  if (!url) throw new Error("hooksd did not start listening");
  return url;
}

async function waitForDeploy(statusUrl: URL): Promise<unknown> {
  for (let i = 0; i < 200; i++) {
    const body = (await (await fetch(statusUrl)).json()) as { targets: { lastDeploy?: { state: string } }[] };
    const state = body.targets[0]?.lastDeploy?.state;
    if (state === "succeeded" || state === "failed") return body;
    await Bun.sleep(50);
  }
  throw new Error("the deploy did not finish within 10 s");
}
