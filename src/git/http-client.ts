import type { GitHttpRequest, GitHttpResponse, HttpClient } from "isomorphic-git";

export interface HttpClientOptions {
  /** Sent as an Authorization header on every request; never logged. */
  authorization?: string | undefined;
  /** Gives up on a remote that stalls: applies to the whole request, body included. */
  signal?: AbortSignal | undefined;
  /** Called with the size of each response chunk, to measure what crossed the wire. */
  onBytes?: ((n: number) => void) | undefined;
}

/** isomorphic-git's HTTP client interface, on top of the runtime's fetch. */
export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  return {
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      const headers: Record<string, string> = { ...req.headers };
      if (options.authorization) headers.authorization = options.authorization;
      const res = await fetch(req.url, {
        method: req.method ?? "GET",
        headers,
        body: req.body ? await collect(req.body) : undefined,
        signal: options.signal,
        redirect: "follow",
      });
      return {
        url: res.url,
        method: req.method,
        statusCode: res.status,
        statusMessage: res.statusText,
        headers: Object.fromEntries(res.headers),
        body: res.body ? chunks(res.body, options.onBytes) : undefined,
      };
    },
  };
}

async function collect(body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of body) parts.push(part);
  return Buffer.concat(parts);
}

async function* chunks(stream: ReadableStream<Uint8Array>, onBytes?: (n: number) => void): AsyncIterableIterator<Uint8Array> {
  for await (const chunk of stream) {
    onBytes?.(chunk.byteLength);
    yield chunk;
  }
}

export function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}

/** One smart-HTTP exchange: the response body as a byte stream, counted as it arrives. */
export interface GitResponse {
  status: number;
  statusText: string;
  contentType: string;
  body: AsyncIterable<Uint8Array>;
}

/** Plain GET/POST for our own upload-pack client, with the same auth, timeout and byte counting. */
export function createGitTransport(options: HttpClientOptions = {}) {
  const send = async (url: string, init: { method: string; headers: Record<string, string>; body?: string }): Promise<GitResponse> => {
    const headers: Record<string, string> = { "user-agent": "git/hooksd", ...init.headers };
    if (options.authorization) headers.authorization = options.authorization;
    const res = await fetch(url, { method: init.method, headers, body: init.body, signal: options.signal, redirect: "follow" });
    const body = res.body ? chunks(res.body, options.onBytes) : (async function* () {})();
    return { status: res.status, statusText: res.statusText, contentType: res.headers.get("content-type") ?? "", body };
  };
  return {
    get: (url: string) => send(url, { method: "GET", headers: {} }),
    post: (url: string, contentType: string, body: string) =>
      send(url, { method: "POST", headers: { "content-type": contentType, accept: contentType.replace("-request", "-result") }, body }),
  };
}

export type GitTransport = ReturnType<typeof createGitTransport>;
