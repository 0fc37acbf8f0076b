import { describe, expect, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { Secret } from "../../src/config/secret.ts";
import { classifyFailure } from "../../src/deploy/failure.ts";
import { decodeError, decodeTarget, encodeError, encodeTarget } from "../../src/deploy/thread-messages.ts";
import { GitError } from "../../src/git/git-error.ts";
import { PackError } from "../../src/git/pack-error.ts";
import { ReleaseError } from "../../src/publish/release-error.ts";
import { LockError } from "../../src/publish/target-lock.ts";
import { testTarget } from "../helpers/test-target.ts";

/** What the other thread receives: encoded, structured-cloned as postMessage does, decoded. */
const acrossThreads = (err: unknown) => decodeError(structuredClone(encodeError(err)));

describe("errors crossing to the daemon's thread", () => {
  test("keep their class, code and cause chain, so failure.ts classifies them as if thrown here", async () => {
    const cut = new GitError("FETCH_FAILED", "fetching failed", { cause: new PackError("closed early", { transfer: "cut" }) });
    const errno = await readFile("/nonexistent/hooksd-thread-test").catch((err: unknown) => err);
    const cases: Array<[unknown, string]> = [
      [cut, "TRANSFER_CUT"],
      [new GitError("FETCH_FAILED", "x", { cause: new PackError("bad bytes") }), "CORRUPT_PACK"],
      [new GitError("LOCAL_CHANGES", "local changes"), "LOCAL_CHANGES"],
      [new ReleaseError("HEALTH_CHECK_FAILED", "unhealthy"), "HEALTH_CHECK_FAILED"],
      [new LockError("locked by rollback"), "LOCKED"],
      [errno, "DIR_MISSING"],
      ["a string thrown", "DEPLOY_FAILED"],
    ];
    for (const [err, code] of cases) {
      expect(classifyFailure(acrossThreads(err)).code).toBe(code);
      expect(classifyFailure(err).code).toBe(code);
    }
    const back = acrossThreads(cut);
    expect(back).toBeInstanceOf(GitError);
    expect(back.message).toBe("fetching failed");
    expect(back.name).toBe("GitError");
    expect(back.cause).toBeInstanceOf(PackError);
    expect((back.cause as PackError).transfer).toBe("cut");
    expect(back.stack).toBe(cut.stack);
  });
});

describe("a target crossing to the deploy thread", () => {
  test("arrives with working Secrets, which still print as placeholders", () => {
    const target = testTarget({
      repo: "/srv/site",
      remote: "https://git.example/site.git",
      secrets: [new Secret("hook-secret")],
      signingTokens: [new Secret("signing-token")],
      credentials: { username: "deployer", password: new Secret("git-password") },
    });
    const back = decodeTarget(structuredClone(encodeTarget(target)));
    expect(back.secrets.map((s) => s.reveal())).toEqual(["hook-secret"]);
    expect(back.signingTokens.map((s) => s.reveal())).toEqual(["signing-token"]);
    expect(back.credentials?.password.reveal()).toBe("git-password");
    expect(back.credentials?.username).toBe("deployer");
    expect(JSON.stringify(back)).not.toMatch(/hook-secret|signing-token|git-password/);
    expect({ ...back, secrets: [], signingTokens: [], credentials: undefined }).toEqual({ ...target, secrets: [], signingTokens: [], credentials: undefined });
  });
});
