/**
 * A Debian container with systemd as PID 1, booted by systemd-nspawn on a
 * throw-away overlay of the cached image and driven from outside through
 * nsenter. It shares the host's network namespace (no --private-network), so
 * servers on the host's loopback are reachable from it and the other way round.
 */
import type { Subprocess } from "bun";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { LineCollector } from "../cli/support.ts";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Container {
  /** The container's PID 1 as the host sees it. */
  pid: number;
  /** A path inside the container, as reachable from the host. */
  path(inside: string): string;
  /** Runs a command inside every namespace of the container. */
  run(cmd: string[], options?: { check?: boolean }): Promise<RunResult>;
  /** `systemctl show UNIT -p NAME...` as an object. */
  show(unit: string, ...properties: string[]): Promise<Record<string, string>>;
  /** Powers off (systemctl poweroff) and waits for nspawn to exit; kills it if it does not. */
  powerOff(): Promise<void>;
  /** The console output so far, for failure messages. */
  console(): string;
}

/** Why nspawn cannot run here, or undefined when it can. */
export function nspawnUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "not root (systemd-nspawn needs a root container; user-namespaced ones do not work here)";
  for (const tool of ["systemd-nspawn", "nsenter", "flock"]) {
    if (!Bun.which(tool)) return `${tool} is not installed (.ci/run installs systemd-container)`;
  }
  return undefined;
}

export async function bootContainer(image: string, timeoutMs = 60_000): Promise<Container> {
  const proc: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn(
    ["systemd-nspawn", "-D", image, "--volatile=overlay", "-b", "--register=no", "--keep-unit", "--console=read-only", `--machine=hooksd-test-${process.pid}`],
    { env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: "1" }, stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  const stdout = new LineCollector(proc.stdout);
  const stderr = new LineCollector(proc.stderr);
  const consoleText = () => [...stdout.lines, ...stderr.lines].join("\n");
  const deadline = Date.now() + timeoutMs;

  // nspawn's child is the container's PID 1 (systemd).
  let pid: number | undefined;
  while (pid === undefined) {
    if (proc.exitCode !== null) throw new Error(`systemd-nspawn exited ${proc.exitCode}:\n${consoleText()}`);
    if (Date.now() > deadline) break;
    const children = await readFile(`/proc/${proc.pid}/task/${proc.pid}/children`, "utf8").catch(() => "");
    const first = Number(children.trim().split(/\s+/)[0]);
    if (first > 0 && (await readFile(`/proc/${first}/comm`, "utf8").catch(() => "")).trim() === "systemd") pid = first;
    else await Bun.sleep(50);
  }
  if (pid === undefined) {
    proc.kill("SIGKILL");
    throw new Error(`no systemd inside the container within ${timeoutMs} ms:\n${consoleText()}`);
  }

  const init = pid;
  const run = async (cmd: string[], { check = true } = {}): Promise<RunResult> => {
    const child = Bun.spawn(["nsenter", "-t", String(init), "-a", "--", ...cmd], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const [stdoutText, stderrText, code] = await Promise.all([child.stdout.text(), child.stderr.text(), child.exited]);
    if (check && code !== 0) throw new Error(`in the container, ${cmd.join(" ")} exited ${code}:\n${stdoutText}${stderrText}`);
    return { code, stdout: stdoutText, stderr: stderrText };
  };

  // Booted means the system manager has finished starting the default target.
  for (;;) {
    const state = (await run(["systemctl", "is-system-running"], { check: false })).stdout.trim();
    if (state === "running" || state === "degraded") break;
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`the container did not finish booting within ${timeoutMs} ms (state '${state}'):\n${consoleText()}`);
    }
    await Bun.sleep(100);
  }

  return {
    pid: init,
    path: (inside) => join(`/proc/${init}/root`, inside),
    run,
    async show(unit, ...properties) {
      const { stdout: text } = await run(["systemctl", "show", unit, ...properties.map((p) => `--property=${p}`)]);
      return Object.fromEntries(text.trim().split("\n").map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]));
    },
    async powerOff() {
      if (proc.exitCode !== null) return;
      await run(["systemctl", "poweroff"], { check: false });
      const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(30_000).then(() => false)]);
      if (!exited) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
    },
    console: consoleText,
  };
}
