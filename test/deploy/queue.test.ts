import { describe, expect, test } from "bun:test";
import { createCoalescingQueue } from "../../src/deploy/coalescing-queue.ts";

/** A run function whose calls finish only when the test says so. */
function controlledRun<T>() {
  const started: T[] = [];
  const finishers: Array<(error?: Error) => void> = [];
  let active = 0;
  let maxActive = 0;
  const run = (item: T) =>
    new Promise<void>((resolve, reject) => {
      started.push(item);
      active++;
      maxActive = Math.max(maxActive, active);
      finishers.push((error) => {
        active--;
        if (error) reject(error);
        else resolve();
      });
    });
  return {
    run,
    started,
    get maxActive() {
      return maxActive;
    },
    /** Finishes the oldest unfinished call, then lets the queue move on. */
    async finishNext(error?: Error) {
      const finish = finishers.shift();
      if (!finish) throw new Error("nothing is running");
      finish(error);
      await Bun.sleep(0);
    },
  };
}

/** Settles microtasks (and one macrotask turn), so the queue can act. */
const tick = () => Bun.sleep(0);

describe("createCoalescingQueue", () => {
  test("the first item starts at once and later items wait until it finishes: never two at a time", async () => {
    const r = controlledRun<number>();
    const q = createCoalescingQueue(r.run, () => {});
    q.push(1);
    expect(r.started).toEqual([1]);
    q.push(2);
    await tick();
    expect(r.started).toEqual([1]);
    await r.finishNext();
    expect(r.started).toEqual([1, 2]);
    await r.finishNext();
    await q.idle();
    expect(r.maxActive).toBe(1);
  });

  test("of items pushed while one runs, only the newest runs next; the others go to onSuperseded in order", async () => {
    const r = controlledRun<string>();
    const superseded: string[] = [];
    const q = createCoalescingQueue(r.run, (item) => superseded.push(item));
    for (const item of ["a", "b", "c", "d", "e"]) q.push(item);
    expect(superseded).toEqual(["b", "c", "d"]);
    await r.finishNext();
    await r.finishNext();
    await q.idle();
    expect(r.started).toEqual(["a", "e"]);
    expect(superseded).toEqual(["b", "c", "d"]);
    expect(r.maxActive).toBe(1);
  });

  test("the running item is never superseded, however many items follow it", async () => {
    const r = controlledRun<number>();
    const superseded: number[] = [];
    const q = createCoalescingQueue(r.run, (item) => superseded.push(item));
    q.push(0);
    for (let i = 1; i <= 100; i++) q.push(i);
    expect(superseded).not.toContain(0);
    expect(superseded).toHaveLength(99);
    await r.finishNext();
    await r.finishNext();
    await q.idle();
    expect(r.started).toEqual([0, 100]);
  });

  test("an item pushed while the last one runs is not lost", async () => {
    const r = controlledRun<number>();
    const q = createCoalescingQueue(r.run, () => {});
    q.push(1);
    await r.finishNext();
    await q.idle();
    q.push(2);
    // 2 is running now; 3 arrives during it.
    q.push(3);
    await r.finishNext();
    await r.finishNext();
    await q.idle();
    expect(r.started).toEqual([1, 2, 3]);
  });

  test("idle() resolves at once when nothing was ever pushed", async () => {
    const q = createCoalescingQueue<number>(async () => {}, () => {});
    expect(q.busy).toBe(false);
    await q.idle();
  });

  test("idle() resolves only once the running and the waiting item have both finished, and busy says so", async () => {
    const r = controlledRun<number>();
    const q = createCoalescingQueue(r.run, () => {});
    q.push(1);
    q.push(2);
    expect(q.busy).toBe(true);
    let idle = false;
    void q.idle().then(() => (idle = true));

    await r.finishNext();
    expect(idle).toBe(false);
    expect(q.busy).toBe(true);
    await r.finishNext();
    await tick();
    expect(idle).toBe(true);
    expect(q.busy).toBe(false);
  });

  test("idle() taken before a push that arrives during the run still waits for that push", async () => {
    const r = controlledRun<number>();
    const q = createCoalescingQueue(r.run, () => {});
    q.push(1);
    let idle = false;
    void q.idle().then(() => (idle = true));
    q.push(2);
    await r.finishNext();
    expect(idle).toBe(false);
    await r.finishNext();
    await tick();
    expect(idle).toBe(true);
    expect(r.started).toEqual([1, 2]);
  });

  test("a run that rejects does not stop the queue, and idle() still resolves", async () => {
    const r = controlledRun<number>();
    const q = createCoalescingQueue(r.run, () => {});
    q.push(1);
    q.push(2);
    await r.finishNext(new Error("deploy 1 failed"));
    expect(r.started).toEqual([1, 2]);
    await r.finishNext();
    await q.idle();
    expect(q.busy).toBe(false);
  });

  test("a run that throws before returning a promise does not stop the queue, and idle() still resolves", async () => {
    const started: number[] = [];
    const q = createCoalescingQueue<number>((item) => {
      started.push(item);
      if (item === 1) throw new Error("synchronous failure");
      return Promise.resolve();
    }, () => {});
    q.push(1);
    await q.idle();
    expect(q.busy).toBe(false);
    q.push(2);
    await q.idle();
    expect(started).toEqual([1, 2]);
  });

  test("the queue starts again after it has gone idle", async () => {
    const ran: number[] = [];
    const q = createCoalescingQueue<number>(async (item) => void ran.push(item), () => {});
    q.push(1);
    await q.idle();
    q.push(2);
    await q.idle();
    expect(ran).toEqual([1, 2]);
  });

  test("falsy items such as 0 and the empty string are queued like any other", async () => {
    const r = controlledRun<number | string>();
    const q = createCoalescingQueue(r.run, () => {});
    q.push(0);
    q.push("");
    await r.finishNext();
    await r.finishNext();
    await q.idle();
    expect(r.started).toEqual([0, ""]);
  });
});

describe("createCoalescingQueue when onSuperseded throws", () => {
  test("the newest item is still queued and runs, and the error reaches the caller", async () => {
    const r = controlledRun<number>();
    const q = createCoalescingQueue(r.run, () => {
      throw new Error("could not record the superseded item");
    });
    q.push(1);
    q.push(2);
    expect(() => q.push(3)).toThrow("could not record the superseded item");
    await r.finishNext();
    await r.finishNext();
    await q.idle();
    expect(r.started).toEqual([1, 3]);
  });
});
