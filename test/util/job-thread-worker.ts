// A stand-in thread for job-thread.test.ts: echoes, never answers, or exits, as each job asks.
declare const self: Worker;
self.onmessage = ({ data }: MessageEvent<{ job: number; op: "echo" | "hang" | "exit"; value?: string }>) => {
  if (data.op === "echo") {
    self.postMessage({ job: data.job, progress: `working on ${data.value}` });
    self.postMessage({ job: data.job, value: data.value });
  }
  if (data.op === "exit") process.exit(3);
};
