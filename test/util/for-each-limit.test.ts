import { expect, test } from "bun:test";
import { forEachLimit } from "../../src/util/for-each-limit.ts";

test("after a failure no further item starts, and the rejection waits for the calls in flight", async () => {
  const started: number[] = [];
  const finished: number[] = [];
  const run = forEachLimit([0, 1, 2, 3, 4, 5, 6, 7], 3, async (i) => {
    started.push(i);
    if (i === 1) throw new Error("item 1 failed");
    await Bun.sleep(i === 0 || i === 2 ? 30 : 1);
    finished.push(i);
  });
  await expect(run).rejects.toThrow("item 1 failed");
  // 0 and 2 were in flight when 1 failed: both finished before the rejection; nothing after them started.
  expect(finished.sort()).toEqual([0, 2]);
  expect(started.sort()).toEqual([0, 1, 2]);
});

test("every item runs when none fails", async () => {
  const seen: number[] = [];
  await forEachLimit([1, 2, 3, 4, 5], 2, async (i) => void seen.push(i));
  expect(seen.sort()).toEqual([1, 2, 3, 4, 5]);
});
