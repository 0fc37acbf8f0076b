/**
 * A Worker that runs numbered jobs, shared by the deploy thread and the
 * checkout helper thread. It starts on first use (or warm()), is held while
 * a job runs and released when idle, so it keeps no process alive; a thread
 * that dies fails the jobs it held, and the next job starts a new one.
 */
import { fileURLToPath } from "node:url";

export interface JobThread {
  /**
   * Posts `message(job)`; every message the thread sends back for that job
   * goes to `onMessage`, which settles the job with `settle`.
   */
  run<T, Reply extends { job: number }>(message: (job: number) => unknown, onMessage: (reply: Reply, settle: Settle<T>) => void): Promise<T>;
  /** Starts the thread ahead of its first job. */
  warm(): void;
  /** Ends the thread; jobs still running there fail with `reason`. */
  stop(reason: string): void;
}

export interface Settle<T> {
  resolve(value: T): void;
  reject(err: Error): void;
}

/**
 * `fromSrc` is the thread's entry point relative to src/ ("deploy/deploy-worker.ts"):
 * build.ts compiles it in as an entry point of its own, and the executable
 * serves it from its embedded file system relative to src/; from source it is
 * found from this file (a relative string would resolve against the cwd).
 * `name` says which thread stopped in the error a lost job gets.
 */
export function createJobThread(fromSrc: string, name: string): JobThread {
  const entry = import.meta.url.startsWith("file:///$bunfs/") ? `./${fromSrc}` : fileURLToPath(new URL(`../${fromSrc}`, import.meta.url));
  let worker: Worker | undefined;
  const jobs = new Map<number, { onMessage(reply: { job: number }): void; reject(err: Error): void }>();
  let nextJob = 1;

  function lost(reason: string): void {
    worker = undefined;
    for (const job of jobs.values()) job.reject(new Error(`the ${name} thread stopped: ${reason}`));
    jobs.clear();
  }

  function start(): Worker {
    const w = new Worker(entry, { smol: true });
    w.onmessage = ({ data }: MessageEvent<{ job: number }>) => jobs.get(data.job)?.onMessage(data);
    w.onerror = (event) => {
      if (worker === w) lost(event.message);
      w.terminate();
    };
    w.addEventListener("close", () => worker === w && lost("it exited"));
    return w;
  }

  return {
    run<T, Reply extends { job: number }>(message: (job: number) => unknown, onMessage: (reply: Reply, settle: Settle<T>) => void): Promise<T> {
      worker ??= start();
      const w = worker;
      const job = nextJob++;
      return new Promise<T>((resolve, reject) => {
        const done = () => {
          jobs.delete(job);
          if (jobs.size === 0) w.unref();
        };
        const settle: Settle<T> = {
          resolve: (value) => (done(), resolve(value)),
          reject: (err) => (done(), reject(err)),
        };
        jobs.set(job, { onMessage: (reply) => onMessage(reply as Reply, settle), reject });
        // Only a running job keeps the process alive, as it would on the main thread.
        w.ref();
        w.postMessage(message(job));
      });
    },
    warm() {
      (worker ??= start()).unref();
    },
    stop(reason) {
      const w = worker;
      if (!w) return;
      lost(reason);
      w.terminate();
    },
  };
}
