import type { LoadedTarget } from "../../src/config/loaded-target.ts";

/** An in-place target as the suites build it: the fields a test cares about, sensible defaults for the rest. */
export function testTarget(fields: Pick<LoadedTarget, "repo" | "remote"> & Partial<LoadedTarget>): LoadedTarget {
  return {
    name: "site",
    refs: "refs/heads/main",
    strategy: "in-place",
    force: false,
    fetchTimeoutSeconds: 30,
    secrets: [],
    signingTokens: [],
    credentials: undefined,
    ...fields,
  };
}
