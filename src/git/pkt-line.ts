/**
 * git's pkt-line framing (gitprotocol-common.txt): four hex digits of length
 * (including themselves), then the payload; "0000" is a flush packet.
 */
import { PackError } from "./pack-error.ts";

const encoder = new TextEncoder();

export function pktLine(line: string): string {
  const length = encoder.encode(line).length + 4;
  if (length > 65520) throw new PackError("pkt-line too long");
  return length.toString(16).padStart(4, "0") + line;
}

export const FLUSH = "0000";

/** A packet: its payload, or null for a flush (and the other special packets). */
export type Packet = Uint8Array | null;

/** Pulls whole packets out of a byte stream without buffering more than one packet. */
export class PktReader {
  private buffered: Uint8Array[] = [];
  private available = 0;
  private readonly source: AsyncIterator<Uint8Array>;

  constructor(stream: AsyncIterable<Uint8Array>) {
    this.source = stream[Symbol.asyncIterator]();
  }

  /** The next packet, or undefined at the end of the stream. */
  async read(): Promise<Packet | undefined> {
    if (!(await this.fill(4))) {
      if (this.available === 0) return undefined;
      throw new PackError("the remote's response ends inside a packet header");
    }
    const lengthText = Buffer.from(this.take(4)).toString("latin1");
    const length = Number.parseInt(lengthText, 16);
    if (!/^[0-9a-f]{4}$/i.test(lengthText) || (length > 0 && length < 4)) {
      // Special packets 0001 (delim) and 0002 (response-end) only appear in protocol v2.
      if (length === 1 || length === 2) return null;
      throw new PackError(`bad pkt-line length ${JSON.stringify(lengthText)} from the remote`);
    }
    if (length === 0) return null;
    if (!(await this.fill(length - 4))) throw new PackError("the remote's response ends inside a packet");
    return this.take(length - 4);
  }

  private async fill(n: number): Promise<boolean> {
    while (this.available < n) {
      const { done, value } = await this.source.next();
      if (done) return false;
      this.buffered.push(value);
      this.available += value.length;
    }
    return true;
  }

  private take(n: number): Uint8Array {
    const first = this.buffered[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.buffered.shift();
      else this.buffered[0] = first.subarray(n);
      this.available -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.buffered[0]!;
      const part = Math.min(chunk.length, n - filled);
      out.set(chunk.subarray(0, part), filled);
      filled += part;
      if (part === chunk.length) this.buffered.shift();
      else this.buffered[0] = chunk.subarray(part);
    }
    this.available -= n;
    return out;
  }
}

/** A packet's text without its trailing newline. */
export function packetText(packet: Uint8Array): string {
  const text = Buffer.from(packet).toString("utf8");
  return text.endsWith("\n") ? text.slice(0, -1) : text;
}
