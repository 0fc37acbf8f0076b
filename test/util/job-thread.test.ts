import { describe, expect, test } from "bun:test";
import { createJobThread, type Settle } from "../../src/util/job-thread.ts";

// Relative to src/, as the threads of hooksd name theirs.
const ENTRY = "../test/util/job-thread-worker.ts";
type Reply = { job: number; progress?: string; value?: string };

function run(thread: ReturnType<typeof createJobThread>, op: string, value?: string, seen: string[] = []) {
  return thread.run<string, Reply>(
    (job) => ({ job, op, value }),
    (reply, settle: Settle<string>) => {
      if (reply.progress) seen.push(reply.progress);
      else settle.resolve(reply.value!);
    },
  );
}

describe("a job thread", () => {
  test("runs jobs at once, each settled by its own replies", async () => {
    const thread = createJobThread(ENTRY, "test");
    const seen: string[] = [];
    try {
      expect(await Promise.all([run(thread, "echo", "a", seen), run(thread, "echo", "b", seen)])).toEqual(["a", "b"]);
      expect(seen.sort()).toEqual(["working on a", "working on b"]);
    } finally {
      thread.stop("done");
    }
  });

  test("fails the jobs in flight when stopped, naming itself, and runs the next job on a new thread", async () => {
    const thread = createJobThread(ENTRY, "test");
    const hung = run(thread, "hang");
    thread.stop("the test stops it");

    await expect(hung).rejects.toThrow("the test thread stopped: the test stops it");
    expect(await run(thread, "echo", "again")).toBe("again");
    thread.stop("done");
  });

  test("fails the running job when the thread exits, and runs the next job on a new thread", async () => {
    const thread = createJobThread(ENTRY, "test");
    const waiting = run(thread, "hang");
    const exiting = run(thread, "exit");
    const [exited, waited] = await Promise.allSettled([exiting, waiting]);

    expect(exited).toMatchObject({ status: "rejected", reason: { message: "the test thread stopped: it exited" } });
    expect(waited).toMatchObject({ status: "rejected", reason: { message: "the test thread stopped: it exited" } });
    expect(await run(thread, "echo", "after")).toBe("after");
    thread.stop("done");
  });
});
