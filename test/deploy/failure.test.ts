import { expect, test } from "bun:test";
import { classifyFailure } from "../../src/deploy/failure.ts";
import { GitError } from "../../src/git/git-error.ts";
import { HookError } from "../../src/hooks/hook-error.ts";
import { ReleaseError } from "../../src/publish/release-error.ts";

const failedHook = { hook: "pre-deploy", path: "/hooks/pre-deploy", exitCode: 1, signal: null, timedOut: false, durationMs: 5, output: "no\n", truncated: false };

test("a failing hook keeps its own code and is not retried", () => {
  expect(classifyFailure(new HookError(failedHook))).toEqual({ code: "HOOK_FAILED", retryable: false });
});

test("a failed health check keeps its own code and is not retried", () => {
  expect(classifyFailure(new ReleaseError("HEALTH_CHECK_FAILED", "health check failed"))).toEqual({ code: "HEALTH_CHECK_FAILED", retryable: false });
});

test("local changes are not worth a retry, a refused connection is", () => {
  expect(classifyFailure(new GitError("LOCAL_CHANGES", "x"))).toEqual({ code: "LOCAL_CHANGES", retryable: false });
  const refused = Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
  expect(classifyFailure(new GitError("FETCH_FAILED", "x", { cause: refused }))).toEqual({ code: "REMOTE_UNREACHABLE", retryable: true });
});

test("an unknown error is a plain failed deploy, not retried", () => {
  expect(classifyFailure(new Error("boom"))).toEqual({ code: "DEPLOY_FAILED", retryable: false });
});
