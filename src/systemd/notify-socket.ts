/**
 * Sends one datagram to an AF_UNIX socket, the transport of systemd's notify
 * protocol (sd_notify(3)). Bun has no unix datagram sockets, so this calls
 * libc through bun:ffi: socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC) and sendto()
 * with a hand-built `struct sockaddr_un`.
 */
import { FFIType, read, type Pointer } from "bun:ffi";
import { dlopenLibc } from "../util/libc.ts";
import { endianness } from "node:os";

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
/** Linux's O_CLOEXEC: hooks and other children must not inherit the socket. */
const SOCK_CLOEXEC = 0o2000000;
const CLOCK_MONOTONIC = 1;
/** sizeof(sun_path) on Linux. */
const SUN_PATH_MAX = 108;

export interface DatagramSender {
  send(message: string): void;
  close(): void;
  /** Whether libc is reachable (then monotonicUsec() works too). */
  readonly viaFfi: boolean;
}

export class NotifySocketError extends Error {
  readonly code = "NOTIFY_SOCKET";
  override name = "NotifySocketError";
}

/**
 * `struct sockaddr_un` for a NOTIFY_SOCKET value: an absolute path, or `@name`
 * for a Linux abstract socket (sun_path starts with a NUL byte and the length
 * counts exactly the name's bytes, no terminator).
 */
export function encodeSockaddrUn(address: string): Uint8Array {
  const abstract = address.startsWith("@");
  if (!abstract && !address.startsWith("/")) {
    throw new NotifySocketError(`NOTIFY_SOCKET '${address}' is neither an absolute path nor an abstract '@name' socket`);
  }
  const name = new TextEncoder().encode(abstract ? address.slice(1) : address);
  // A path needs room for its NUL terminator; an abstract name has its leading NUL instead.
  if (name.length + 1 > SUN_PATH_MAX) throw new NotifySocketError(`NOTIFY_SOCKET is longer than ${SUN_PATH_MAX - 1} bytes`);
  const addr = new Uint8Array(2 + 1 + name.length);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, endianness() === "LE");
  // Abstract: [family][0][name]; path: [family][path][0]. Uint8Array is zero-filled.
  addr.set(name, abstract ? 3 : 2);
  return addr;
}

type Libc = ReturnType<typeof openLibc>;
let libc: Libc | undefined;

function openLibc() {
  const symbols = {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    sendto: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i64 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
    clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  } as const;
  return dlopenLibc(symbols);
}

/** Loads libc through ffi; throws when that is impossible (the caller falls back). */
export function loadLibc(): void {
  libc ??= openLibc();
}

/** CLOCK_MONOTONIC in microseconds, the clock systemd's MONOTONIC_USEC= is read on. */
export function monotonicUsec(): bigint {
  loadLibc();
  const timespec = new BigInt64Array(2);
  if (libc!.clock_gettime(CLOCK_MONOTONIC, timespec) !== 0) throw new NotifySocketError("clock_gettime(CLOCK_MONOTONIC) failed");
  return timespec[0]! * 1_000_000n + timespec[1]! / 1000n;
}

export function openDatagramSocket(address: string): DatagramSender {
  loadLibc();
  const c = libc!;
  const addr = encodeSockaddrUn(address);
  const errno = () => read.i32(c.__errno_location() as Pointer, 0);
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new NotifySocketError(`socket(AF_UNIX, SOCK_DGRAM) failed (errno ${errno()})`);
  let open = true;
  return {
    send(message) {
      if (!open) throw new NotifySocketError("notify socket is closed");
      const data = new TextEncoder().encode(message);
      const sent = Number(c.sendto(fd, data, data.length, 0, addr, addr.length));
      if (sent < 0) throw new NotifySocketError(`sendto ${address} failed (errno ${errno()})`);
    },
    close() {
      if (open) c.close(fd);
      open = false;
    },
    viaFfi: true,
  };
}
