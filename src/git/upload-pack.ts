/**
 * The client side of git's smart HTTP protocol, version 0/1
 * (gitprotocol-http.txt, gitprotocol-pack.txt): ref discovery, then one
 * stateless request with our wants, shallow boundary, depth and haves, whose
 * answer is the shallow update, an ACK/NAK and the pack on side-band 1.
 */
import type { GitTransport } from "./http-client.ts";
import { PackError, RemoteHttpError } from "./pack-error.ts";
import { FLUSH, packetText, pktLine, PktReader } from "./pkt-line.ts";

export interface Advertisement {
  /** Ref name → the id it points at. */
  refs: Map<string, string>;
  capabilities: Set<string>;
}

export interface PackRequest {
  wants: string[];
  /** Commits we have, so the pack leaves out everything they reach. */
  haves: string[];
  /** Our shallow commits (.git/shallow): we lack their parents. */
  shallow: string[];
  /** History depth to fetch; undefined for all of it. */
  depth: number | undefined;
}

export interface PackResponse {
  /** Commits that are now shallow boundaries, and ones that no longer are. */
  shallow: string[];
  unshallow: string[];
  /** The pack, demultiplexed from side-band 1. */
  pack: AsyncIterable<Uint8Array>;
}

/** git's depth meaning "all of it", used to unshallow. */
export const INFINITE_DEPTH = 0x7fffffff;

const SERVICE = "git-upload-pack";

function endpoint(url: string, path: string): string {
  return `${url.replace(/\/+$/, "")}/${path}`;
}

function httpFailure(status: number, statusText: string): Error {
  return new RemoteHttpError(status, statusText);
}

export async function discoverRefs(transport: GitTransport, url: string): Promise<Advertisement> {
  const res = await transport.get(endpoint(url, `info/refs?service=${SERVICE}`));
  if (res.status !== 200) throw httpFailure(res.status, res.statusText);
  if (res.contentType !== `application/x-${SERVICE}-advertisement`) {
    throw new Error(`the remote is not a smart HTTP git server (content-type ${JSON.stringify(res.contentType)})`);
  }
  const reader = new PktReader(res.body);
  const first = await reader.read();
  if (!first || packetText(first) !== `# service=${SERVICE}`) throw new PackError("unexpected ref advertisement from the remote");
  if ((await reader.read()) !== null) throw new PackError("unexpected ref advertisement from the remote");

  const ad: Advertisement = { refs: new Map(), capabilities: new Set() };
  for (let packet = await reader.read(); packet; packet = await reader.read()) {
    let line = packetText(packet);
    const nul = line.indexOf("\0");
    if (nul >= 0) {
      for (const cap of line.slice(nul + 1).split(" ")) if (cap) ad.capabilities.add(cap);
      line = line.slice(0, nul);
    }
    const match = /^([0-9a-f]{40}) (.+)$/.exec(line);
    if (!match) throw new PackError(`bad ref line from the remote: ${JSON.stringify(line)}`);
    const [, oid, name] = match as unknown as [string, string, string];
    if (name === "capabilities^{}") continue; // an empty repository
    // "name^{}" lines give what annotated tags peel to; we peel tags ourselves once fetched.
    if (!name.endsWith("^{}")) ad.refs.set(name, oid);
  }
  return ad;
}

export async function requestPack(transport: GitTransport, url: string, ad: Advertisement, request: PackRequest): Promise<PackResponse> {
  const band = ad.capabilities.has("side-band-64k") ? "side-band-64k" : ad.capabilities.has("side-band") ? "side-band" : undefined;
  if (!band) throw new PackError("the remote offers no side-band; hooksd needs it");
  const deepen = request.depth !== undefined && ad.capabilities.has("shallow");
  // thin-pack matters beyond delta bases: only with it does git's pack-objects
  // exclude the trees of a shallow "have" (--objects-edge-aggressive), without
  // which every shallow fetch resends the whole snapshot. No multi_ack: one round suffices.
  const caps = [band, "thin-pack", "ofs-delta", "no-progress", "agent=hooksd"].filter((c) => c === "agent=hooksd" || ad.capabilities.has(c));
  if (deepen) caps.push("shallow");

  const lines = request.wants.map((oid, i) => pktLine(i === 0 ? `want ${oid} ${caps.join(" ")}\n` : `want ${oid}\n`));
  if (deepen) {
    for (const oid of request.shallow) lines.push(pktLine(`shallow ${oid}\n`));
    lines.push(pktLine(`deepen ${request.depth}\n`));
  }
  lines.push(FLUSH);
  for (const oid of request.haves) lines.push(pktLine(`have ${oid}\n`));
  lines.push(pktLine("done\n"));

  const res = await transport.post(endpoint(url, SERVICE), `application/x-${SERVICE}-request`, lines.join(""));
  if (res.status !== 200) throw httpFailure(res.status, res.statusText);
  const reader = new PktReader(res.body);

  const shallow: string[] = [];
  const unshallow: string[] = [];
  if (deepen) {
    for (let packet = await reader.read(); packet; packet = await reader.read()) {
      const [kind, oid] = packetText(packet).split(" ");
      if (kind === "shallow" && oid) shallow.push(oid);
      else if (kind === "unshallow" && oid) unshallow.push(oid);
      else throw remoteError(packetText(packet));
    }
  }
  for (;;) {
    const packet = await reader.read();
    if (!packet) throw new PackError("the remote ended the response before sending a pack", { transfer: "cut" });
    const text = packetText(packet);
    if (text === "NAK" || text.startsWith("ACK ")) break;
    throw remoteError(text);
  }
  return { shallow, unshallow, pack: demultiplex(reader) };
}

function remoteError(text: string): Error {
  return new Error(text.startsWith("ERR ") ? `the remote refused: ${text.slice(4)}` : `unexpected response from the remote: ${JSON.stringify(text.slice(0, 200))}`);
}

async function* demultiplex(reader: PktReader): AsyncIterable<Uint8Array> {
  for (;;) {
    const packet = await reader.read();
    if (packet === undefined) throw new PackError("the connection closed before the pack was complete", { transfer: "cut" });
    if (packet === null) return;
    const band = packet[0];
    if (band === 1) yield packet.subarray(1);
    else if (band === 3) throw new Error(`the remote failed: ${Buffer.from(packet.subarray(1)).toString("utf8").trim()}`);
    // Band 2 is progress text for humans.
  }
}
