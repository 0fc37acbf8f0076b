/**
 * Shared by the fault suites: an app with a real deployer (retry delays
 * chosen by the test), deliveries of a pushed commit that wait for the deploy
 * to settle, and native git's verdict on the checkout. Not a test file.
 */
import { expect } from "bun:test";
import type { LoadedTarget } from "../../src/config/loaded-target.ts";
import { createDeployer } from "../../src/deploy/deployer.ts";
import type { RetryPolicy } from "../../src/deploy/retry.ts";
import { createApp } from "../../src/http/app.ts";
import { createLogger } from "../../src/log.ts";
import { createMemoryHistory } from "../../src/state/history.ts";
import { git, runGit } from "../helpers/git-fixture.ts";
import { gitlabHeaders, gitlabPayload } from "../http/harness.ts";

export function faultHarness(target: LoadedTarget, retry: Partial<RetryPolicy>) {
  const lines: string[] = [];
  const log = createLogger((line) => lines.push(line));
  const history = createMemoryHistory();
  const deployer = createDeployer({ targets: [target], history, log, retry });
  const app = createApp({ target, deployer, log });
  /** Posts a signed GitLab push of `commit` (answered 202) and returns its record once the deploy settled. */
  const deliver = async (commit: string) => {
    const body = await gitlabPayload("gitlab-push.json", { ref: "refs/heads/main", before: "0".repeat(40), after: commit, checkout_sha: commit });
    const res = await app.request("/", { method: "POST", headers: gitlabHeaders(), body });
    expect(res.status).toBe(202);
    const { deploy } = (await res.json()) as { deploy: string };
    await deployer.idle();
    return history.get(deploy)!;
  };
  const status = async () =>
    ((await (await app.request("/status")).json()) as { targets: Array<{ deployedCommit?: string; lastDeploy: Record<string, unknown> }> }).targets[0]!;
  const logLines = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { app, deliver, status, logLines, history };
}

/** Native git finds nothing wrong: every ref names an object the store has, every object is whole, the work tree is clean. */
export async function expectConsistentStore(repo: string): Promise<void> {
  const { stdout, stderr } = await runGit(repo, ["fsck", "--no-progress", "--no-dangling"]);
  expect(new TextDecoder().decode(stdout) + stderr).toBe("");
  expect(await git(repo, "status", "--porcelain", "--untracked-files=all")).toBe("");
}
