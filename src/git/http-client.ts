export interface HttpClientOptions {
  /** Sent as an Authorization header on every request; never logged. */
  authorization?: string | undefined;
  /** Gives up on a remote that stalls: applies to the whole request, body included. */
  signal?: AbortSignal | undefined;
  /** Called with the size of each response chunk, to measure what crossed the wire. */
  onBytes?: ((n: number) => void) | undefined;
}

/** One smart-HTTP exchange: the response body as a byte stream, counted as it arrives. */
export interface GitResponse {
  status: number;
  statusText: string;
  contentType: string;
  body: AsyncIterable<Uint8Array>;
}

/** GET and POST for our upload-pack client, on top of the runtime's fetch, with auth, timeout and byte counting. */
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

async function* chunks(stream: ReadableStream<Uint8Array>, onBytes?: (n: number) => void): AsyncIterableIterator<Uint8Array> {
  for await (const chunk of stream) {
    onBytes?.(chunk.byteLength);
    yield chunk;
  }
}

export function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}
