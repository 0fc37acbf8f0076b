/**
 * systemd's notify protocol (sd_notify(3)) for `Type=notify`: READY=1 once
 * hooksd listens, STATUS= lines, RELOADING=1/STOPPING=1, and WATCHDOG=1 pings
 * when the unit sets WatchdogSec=. Without NOTIFY_SOCKET (not under systemd)
 * every call does nothing.
 */
import type { Logger } from "../log.ts";
import { loadLibc, monotonicUsec, openDatagramSocket, type DatagramSender } from "./notify-socket.ts";
import { errorMessage } from "../util/error-message.ts";

export interface Notifier {
  /** True when a service manager listens. */
  readonly active: boolean;
  ready(): void;
  /** Call ready() again once the reload is done. */
  reloading(): void;
  stopping(): void;
  status(text: string): void;
  /** Stops the watchdog pings and closes the socket. */
  close(): void;
}

export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  log: Logger;
  /** ffi (the default), or the `systemd-notify` program when ffi cannot load libc. */
  transport?: "ffi" | "systemd-notify";
  pid?: number;
}

const NOTIFY_VARIABLES = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] as const;

export function createNotifier({ env = process.env, log, transport, pid = process.pid }: NotifierOptions): Notifier {
  const socket = env.NOTIFY_SOCKET;
  const watchdogUsec = watchdogInterval(env, pid, log);
  // Like sd_notify(unset_environment=1): hooks and other children must not
  // talk to the service manager in hooksd's name, nor inherit its watchdog.
  for (const name of NOTIFY_VARIABLES) delete env[name];
  if (!socket) return inactiveNotifier;

  let sender: DatagramSender;
  try {
    sender = openSender(socket, transport, log);
  } catch (err) {
    log.warn("cannot use NOTIFY_SOCKET; systemd will not hear from hooksd", { error: errorMessage(err) });
    return inactiveNotifier;
  }
  let failed = false;
  const send = (message: string) => {
    try {
      sender.send(message);
    } catch (err) {
      // A broken notify socket must not take the daemon down; say so once.
      if (!failed) log.warn("sd_notify failed", { error: errorMessage(err) });
      failed = true;
    }
  };

  let timer: ReturnType<typeof setInterval> | undefined;
  if (watchdogUsec !== undefined) {
    // Half the period, as sd_watchdog_enabled(3) recommends; a timer firing at
    // all proves the event loop is not stuck, which is what the watchdog is for.
    timer = setInterval(() => send("WATCHDOG=1"), Math.max(1, Math.floor(watchdogUsec / 2000)));
    timer.unref();
  }

  return {
    active: true,
    ready: () => send("READY=1"),
    reloading: () => send(sender.viaFfi ? `RELOADING=1\nMONOTONIC_USEC=${monotonicUsec()}` : "RELOADING=1"),
    stopping: () => send("STOPPING=1"),
    // STATUS= is one line: a newline would end the field.
    status: (text) => send(`STATUS=${text.replace(/[\r\n]+/g, " ")}`),
    close() {
      if (timer) clearInterval(timer);
      sender.close();
    },
  };
}

const inactiveNotifier: Notifier = {
  active: false,
  ready() {},
  reloading() {},
  stopping() {},
  status() {},
  close() {},
};

/** WATCHDOG_USEC applies when WATCHDOG_PID is unset or names this process. */
function watchdogInterval(env: NodeJS.ProcessEnv, pid: number, log: Logger): number | undefined {
  if (!env.WATCHDOG_USEC) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isSafeInteger(usec) || usec <= 0) {
    log.warn("ignoring an invalid WATCHDOG_USEC", { value: env.WATCHDOG_USEC });
    return undefined;
  }
  return usec;
}

function openSender(socket: string, transport: NotifierOptions["transport"], log: Logger): DatagramSender {
  if (transport === "systemd-notify") return systemdNotifySender(socket);
  try {
    loadLibc();
  } catch (err) {
    if (transport === "ffi") throw err;
    log.warn("bun:ffi cannot reach libc; notifying through systemd-notify (the unit needs NotifyAccess=all)", {
      error: errorMessage(err),
    });
    return systemdNotifySender(socket);
  }
  return openDatagramSocket(socket);
}

/**
 * The fallback: one `systemd-notify` process per message. Without privileges it
 * cannot claim hooksd's PID as the sender, so systemd accepts it only with
 * NotifyAccess=all.
 */
function systemdNotifySender(socket: string): DatagramSender {
  const program = Bun.which("systemd-notify");
  return {
    send(message) {
      if (!program) throw new Error("systemd-notify is not on PATH and bun:ffi cannot load libc");
      const result = Bun.spawnSync([program, ...message.split("\n")], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NOTIFY_SOCKET: socket },
        stdin: "ignore",
        stdout: "ignore",
        stderr: "pipe",
      });
      if (result.exitCode !== 0) throw new Error(`systemd-notify exited ${result.exitCode}: ${result.stderr.toString().trim()}`);
    },
    close() {},
    viaFfi: false,
  };
}
