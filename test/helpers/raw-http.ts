/**
 * A hand-driven HTTP/1.1 client over a plain TCP socket, for what fetch()
 * cannot do: send the headers and then trickle, stall or flood the body, and
 * see exactly when (and whether) the server answers or hangs up.
 */
import { connect, type Socket } from "node:net";

export interface RawConnection {
  socket: Socket;
  /** Everything the server sent so far, as latin1 text. */
  received(): string;
  /** Resolves once the server closed the connection (or it broke). */
  closed: Promise<void>;
  isClosed(): boolean;
  /** Resolves with the status of the first response, or undefined if the connection closed without one. */
  status(): Promise<number | undefined>;
  write(data: string | Uint8Array): Promise<boolean>;
}

export async function openRaw(url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  let text = "";
  let closed = false;
  socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
  socket.on("error", () => {}); // a reset is an expected way to be cut off
  const closedPromise = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  void closedPromise.then(() => (closed = true));
  return {
    socket,
    received: () => text,
    closed: closedPromise,
    isClosed: () => closed,
    async status() {
      for (;;) {
        const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
        if (match) return Number(match[1]);
        if (closed) return undefined;
        await Promise.race([closedPromise, new Promise((r) => socket.once("data", r))]);
      }
    },
    write: (data) =>
      new Promise<boolean>((resolve) => {
        if (closed || socket.destroyed) return resolve(false);
        socket.write(data, (err) => resolve(!err));
      }),
  };
}

/** The request line and headers of a POST, ending with the blank line. */
export function requestHead(path: string, host: string, headers: Record<string, string>): string {
  const lines = [`POST ${path} HTTP/1.1`, `Host: ${host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return lines.join("\r\n") + "\r\n\r\n";
}
