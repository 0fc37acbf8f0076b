/**
 * Open-loop webhook load, run as its own process: `bun bench/load.ts URL RATE SECONDS`.
 * Sends signed GitLab pushes of a branch the target does not deploy (answered
 * 200 "ignored" after full verification and parsing), at a fixed rate whether
 * or not earlier answers came back, and prints one JSON array of
 * [epoch ms when sent, latency ms, status] per request.
 *
 * Requests go over plain keep-alive sockets on this thread, like wrk, rather
 * than through fetch(): fetch hands every request to Bun's HTTP client thread
 * and back, two more thread wake-ups per request, which on a busy 2-core
 * machine measured the client's scheduling as much as the daemon's answer.
 */
import type { Socket } from "bun";
import { gitlabPushBody, gitlabPushHeaders } from "../test/cli/support.ts";
import { SECRET } from "./daemon.ts";

const [urlArg, rateArg, secondsArg] = process.argv.slice(2);
if (!urlArg || !rateArg || !secondsArg) {
  console.error("usage: bun bench/load.ts URL RATE SECONDS");
  process.exit(2);
}
const url = new URL(urlArg);
const rate = Number(rateArg);
const total = Math.round(rate * Number(secondsArg));
const body = await gitlabPushBody("refs/heads/bench-not-deployed", "0".repeat(40), "1".repeat(40));

const headers = { ...gitlabPushHeaders(SECRET), Host: url.host, "Content-Length": String(Buffer.byteLength(body)) };
const request = Buffer.from(`POST ${url.pathname} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n${body}`);

interface Conn {
  socket: Socket<Conn> | undefined;
  /** Bytes of the answer received so far; the request in flight and when it was sent. */
  received: Buffer;
  sentAt: number;
  busy: boolean;
}

const results: Array<[number, number, number]> = [];
const idle: Conn[] = [];
let outstanding = 0;

function finish(conn: Conn, status: number): void {
  results.push([performance.timeOrigin + conn.sentAt, performance.now() - conn.sentAt, status]);
  conn.busy = false;
  conn.received = Buffer.alloc(0);
  outstanding--;
  if (status !== 0) idle.push(conn);
}

/** A complete answer's status, or undefined while bytes are still missing. */
function parseAnswer(bytes: Buffer): number | undefined {
  const end = bytes.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const head = bytes.subarray(0, end).toString("latin1");
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (!length) throw new Error(`answer without Content-Length: ${head}`);
  if (bytes.length < end + 4 + Number(length[1])) return undefined;
  return Number(head.slice(9, 12));
}

async function connect(): Promise<Conn> {
  const conn: Conn = { socket: undefined, received: Buffer.alloc(0), sentAt: 0, busy: false };
  conn.socket = await Bun.connect<Conn>({
    hostname: url.hostname,
    port: Number(url.port),
    data: conn,
    socket: {
      data(socket, chunk) {
        const c = socket.data;
        c.received = c.received.length === 0 ? Buffer.from(chunk) : Buffer.concat([c.received, chunk]);
        const status = parseAnswer(c.received);
        if (status !== undefined) finish(c, status);
      },
      close(socket) {
        if (socket.data.busy) finish(socket.data, 0);
        socket.data.socket = undefined;
      },
      error(socket) {
        if (socket.data.busy) finish(socket.data, 0);
      },
    },
  });
  return conn;
}

async function send(): Promise<void> {
  outstanding++;
  let conn = idle.pop();
  while (conn && !conn.socket) conn = idle.pop();
  conn ??= await connect();
  conn.busy = true;
  conn.sentAt = performance.now();
  const written = conn.socket!.write(request);
  if (written !== request.length) throw new Error(`short write (${written} of ${request.length} bytes)`);
}

// Enough connections for the answers in flight, opened before the clock starts.
for (const c of await Promise.all(Array.from({ length: 16 }, connect))) idle.push(c);
const start = performance.now();
let sent = 0;
while (sent < total) {
  const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
  for (; sent < due; sent++) void send();
  await Bun.sleep(1);
}
while (outstanding > 0) await Bun.sleep(5);
for (const c of idle) c.socket?.end();
process.stdout.write(JSON.stringify(results));
