import type { MiddlewareHandler } from "hono";
import type { Secret } from "../config/secret.ts";
import { timingSafeEqual } from "../providers/timing-safe-equal.ts";
import { HttpError } from "./http-error.ts";

/**
 * What the transport tells the app about a request. serve passes the peer
 * address from Bun's server.requestIP(); tests pass any address they like via
 * app.request(path, init, { clientAddress }).
 */
export type ConnBindings = { clientAddress?: string | undefined };

/**
 * Guards the admin endpoints (/status, /deploys/:id, /metrics): open to
 * loopback clients, otherwise only with `Authorization: Bearer <admin token>`.
 *
 * A request with no bindings at all never crossed a socket: it was made by
 * this process (app.request() without bindings), so it counts as local. Any
 * request from Bun.serve carries bindings, and an unknown address there is
 * treated as remote.
 */
export function createAdminAccess(token: Secret | undefined): MiddlewareHandler<{ Bindings: ConnBindings }> {
  return async function adminAccess(c, next) {
    const inProcess = c.env === undefined;
    if (inProcess || isLoopback(c.env.clientAddress)) return next();
    if (!token) {
      throw new HttpError(403, "FORBIDDEN", "admin endpoints answer loopback clients only (configure an admin token to open them to others)");
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
    if (!match || !timingSafeEqual(match[1]!, token.reveal())) {
      c.header("WWW-Authenticate", 'Bearer realm="hooksd"');
      throw new HttpError(401, "UNAUTHORIZED", "admin endpoints need 'Authorization: Bearer <admin token>'");
    }
    return next();
  };
}

/** 127.0.0.0/8, ::1, and IPv4 loopback mapped into IPv6. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || address === "::1";
}
