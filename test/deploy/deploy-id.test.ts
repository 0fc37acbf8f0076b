import { expect, test } from "bun:test";
import { newDeployId } from "../../src/deploy/deploy-id.ts";

test("ids made in the same millisecond sort in creation order", () => {
  const now = new Date("2026-11-22T00:43:01.123Z");
  const ids = Array.from({ length: 50 }, () => newDeployId(now));
  expect([...ids].sort()).toEqual(ids);
  expect(new Set(ids).size).toBe(50);
});

test("an id is safe as a file name and starts with its UTC time", () => {
  const id = newDeployId(new Date("2026-11-22T00:43:01.123Z"));
  expect(id).toMatch(/^20261122T004301123Z-\d{4}-[0-9a-f]{6}$/);
});
