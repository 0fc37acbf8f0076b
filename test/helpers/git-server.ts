/**
 * A real git remote for tests: every bare repository under `root` is served
 * over git's smart HTTP protocol by running the native `git http-backend` as a
 * CGI process per request. Tests only; src/ never runs the git binary.
 */
import { afterEach } from "bun:test";
import type { Server, Subprocess } from "bun";

export interface GitServer {
  /** `http://127.0.0.1:PORT/NAME`, e.g. url("site.git"). */
  url(repoName: string): string;
  port: number;
  /** Every request received, including ones refused with 401 or answered by `onRequest`. */
  requests: number;
  /** Whatever git http-backend wrote to stderr, one entry per request that wrote something. */
  backendErrors: string[];
  /** Response body bytes git http-backend sent so far, over every request: what crossed the wire to clients. */
  bytesSent: number;
  stop(): Promise<void>;
}

export interface GitServerOptions {
  root: string;
  /** A fixed port, e.g. one a target already points at while nothing listened there; 0 (any free port) by default. */
  port?: number;
  auth?: { username: string; password: string };
  /**
   * Seen first for every request (before auth). Return a Response to answer
   * the request instead of git (fault injection), or undefined to carry on.
   */
  onRequest?: (req: Request) => Response | undefined | Promise<Response | undefined>;
  /**
   * Sees git's answer to every request it served and may replace it (fault
   * injection after the fact: cut, stall or corrupt a real pack; see git-faults.ts).
   */
  onResponse?: (req: Request, res: Response) => Response | Promise<Response>;
}

export async function startGitServer(options: GitServerOptions): Promise<GitServer> {
  const backend = (await Bun.spawn(["git", "--exec-path"]).stdout.text()).trim() + "/git-http-backend";
  const state = { requests: 0, backendErrors: [] as string[], bytesSent: 0 };

  const server: Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
    // Big clones over slow CI machines can be quiet for a while; don't cut them off.
    idleTimeout: 0,
    async fetch(req, srv) {
      state.requests++;
      const injected = await options.onRequest?.(req);
      if (injected) return injected;

      let remoteUser: string | undefined;
      if (options.auth) {
        remoteUser = basicAuthUser(req.headers.get("authorization"), options.auth);
        if (remoteUser === undefined) {
          return new Response("authentication required\n", {
            status: 401,
            headers: { "WWW-Authenticate": 'Basic realm="git"' },
          });
        }
      }

      const url = new URL(req.url);
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
        // Keep the developer's own git config out of the remote's behaviour.
        GIT_CONFIG_NOSYSTEM: "1",
        GIT_CONFIG_GLOBAL: "/dev/null",
        // Accept pushes to every repo, not only ones that set http.receivepack
        // themselves (http-backend refuses anonymous pushes by default).
        GIT_CONFIG_COUNT: "2",
        GIT_CONFIG_KEY_0: "http.receivepack",
        GIT_CONFIG_VALUE_0: "true",
        // Test repos need no durability; fsync on a busy shared disk can stall for seconds.
        GIT_CONFIG_KEY_1: "core.fsync",
        GIT_CONFIG_VALUE_1: "none",
        GIT_PROJECT_ROOT: options.root,
        GIT_HTTP_EXPORT_ALL: "1",
        REQUEST_METHOD: req.method,
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REMOTE_ADDR: srv.requestIP(req)?.address ?? "127.0.0.1",
      };
      const passthrough: Array<[header: string, variable: string]> = [
        ["content-type", "CONTENT_TYPE"],
        ["content-length", "CONTENT_LENGTH"],
        // http-backend inflates gzip request bodies itself when told about them.
        ["content-encoding", "HTTP_CONTENT_ENCODING"],
        ["git-protocol", "HTTP_GIT_PROTOCOL"],
      ];
      for (const [header, variable] of passthrough) {
        const value = req.headers.get(header);
        if (value !== null) env[variable] = value;
      }
      if (remoteUser !== undefined) env.REMOTE_USER = remoteUser;

      const proc = Bun.spawn([backend], {
        env,
        // Streamed, so a large push is never held in memory here.
        stdin: req.body ?? "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
      void proc.stderr.text().then((text) => {
        if (text) state.backendErrors.push(text);
      });
      const res = await cgiResponse(proc, (n) => (state.bytesSent += n));
      return options.onResponse ? options.onResponse(req, res) : res;
    },
  });

  const port = server.port ?? 0;
  return {
    url: (repoName) => `http://127.0.0.1:${port}/${repoName}`,
    port,
    get requests() {
      return state.requests;
    },
    set requests(n) {
      state.requests = n;
    },
    backendErrors: state.backendErrors,
    get bytesSent() {
      return state.bytesSent;
    },
    stop: () => server.stop(true),
  };
}

/** The user name when the Authorization header carries exactly the expected credentials. */
function basicAuthUser(header: string | null, auth: { username: string; password: string }): string | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? "");
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  return decoded === `${auth.username}:${auth.password}` ? auth.username : undefined;
}

/**
 * Turns CGI output (headers, a blank line, then the body) into a Response.
 * Only the header block is buffered; the body (possibly a whole pack) is streamed.
 */
async function cgiResponse(proc: Subprocess<ReadableStream, "pipe", "pipe">, countBytes: (n: number) => void): Promise<Response> {
  const reader = proc.stdout.getReader();
  let buffered = new Uint8Array(0);
  let bodyStart: number;
  while ((bodyStart = headerBlockEnd(buffered)) < 0) {
    const { done, value } = await reader.read();
    if (done) return new Response("git http-backend ended without CGI headers\n", { status: 502 });
    buffered = Buffer.concat([buffered, value]);
  }

  let status = 200;
  const headers = new Headers();
  for (const line of new TextDecoder().decode(buffered.subarray(0, bodyStart)).split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 500;
    else headers.append(name, value);
  }

  const rest = buffered.subarray(bodyStart);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      if (rest.length > 0) {
        countBytes(rest.length);
        controller.enqueue(rest);
      }
    },
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
      } else {
        countBytes(value.byteLength);
        controller.enqueue(value);
      }
    },
    // The client went away: don't leave the CGI process behind.
    async cancel() {
      proc.kill();
      await reader.cancel();
    },
  });
  if (status === 204 || status === 304) {
    // These statuses may not carry a body; drain nothing and let the process go.
    await reader.cancel();
    return new Response(null, { status, headers });
  }
  return new Response(body, { status, headers });
}

/** Offset just past the first empty line ("\n" or "\r\n"), or -1 if there is none yet. */
function headerBlockEnd(buf: Uint8Array): number {
  let lineStart = 0;
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    const lineLength = i - lineStart;
    if (lineLength === 0 || (lineLength === 1 && buf[lineStart] === 0x0d)) return i + 1;
    lineStart = i + 1;
  }
  return -1;
}

/** For a test file: starts git servers on demand and stops every one after each test. */
export function gitServersPerTest(): (options: GitServerOptions) => Promise<GitServer> {
  const servers: GitServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });
  return async (options) => {
    const server = await startGitServer(options);
    servers.push(server);
    return server;
  };
}
