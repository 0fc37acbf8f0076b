/**
 * Faults a real remote can show, injected into the test git server's real
 * answers (its `onResponse` hook): the pack is cut, stalls or arrives with
 * flipped bytes. Only the upload-pack answer (the one carrying the pack) is
 * touched; ref advertisement goes through as git sent it.
 */
export type ResponseHook = (req: Request, res: Response) => Response | Promise<Response>;

/** True for the request whose answer carries the packfile. */
export function isPackRequest(req: Request): boolean {
  return req.method === "POST" && new URL(req.url).pathname.endsWith("/git-upload-pack");
}

/** Where the pack's bytes sit in a sideband upload-pack answer: [start, end) ranges of band-1 payloads. */
export function packRanges(body: Uint8Array): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let pos = 0;
  while (pos + 4 <= body.length) {
    const length = Number.parseInt(new TextDecoder().decode(body.subarray(pos, pos + 4)), 16);
    if (!Number.isFinite(length)) break;
    if (length < 4) {
      pos += 4; // flush / delimiter packets
      continue;
    }
    // Band 1 is pack data; lines before the pack (NAK, ACK) have no band byte but never start with \x01.
    if (body[pos + 4] === 1) ranges.push([pos + 5, pos + length]);
    pos += length;
  }
  return ranges;
}

/** The offset in `body` of the pack's middle byte (counting pack bytes only), or -1 if there is no pack. */
export function packMiddle(body: Uint8Array): number {
  const ranges = packRanges(body);
  const total = ranges.reduce((n, [a, b]) => n + b - a, 0);
  let left = Math.floor(total / 2);
  for (const [a, b] of ranges) {
    if (left < b - a) return a + left;
    left -= b - a;
  }
  return -1;
}

/** Applies `fault` to the buffered upload-pack answer; every other answer passes untouched. */
function onPack(fault: (body: Uint8Array, res: Response) => Response): ResponseHook {
  return async (req, res) => {
    if (!isPackRequest(req) || res.status !== 200) return res;
    const body = await res.bytes();
    if (packMiddle(body) < 0) throw new Error("git-faults: the upload-pack answer carries no pack");
    return fault(body, res);
  };
}

function respond(res: Response, stream: ReadableStream<Uint8Array>): Response {
  const headers = new Headers(res.headers);
  headers.delete("content-length");
  return new Response(stream, { status: res.status, headers });
}

/** The connection breaks half-way through the pack: the first half arrives, then the stream errors. */
export function cutMidPack(): ResponseHook {
  return onPack((body, res) => {
    const cut = packMiddle(body);
    let sent = false;
    return respond(
      res,
      new ReadableStream<Uint8Array>({
        pull(controller) {
          if (!sent) {
            sent = true;
            controller.enqueue(body.slice(0, cut));
            return;
          }
          controller.error(new Error("connection cut by the test"));
        },
      }),
    );
  });
}

/** The first half of the pack arrives, then nothing, ever: only the client's timeout ends the wait. */
export function stallMidPack(): ResponseHook {
  return onPack((body, res) => {
    const cut = packMiddle(body);
    return respond(
      res,
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(body.slice(0, cut));
        },
        pull: () => new Promise<void>(() => {}),
      }),
    );
  });
}

/** The whole answer arrives, with a few bytes in the middle of the pack inverted. */
export function corruptPack(): ResponseHook {
  return onPack((body, res) => {
    const copy = body.slice();
    const middle = packMiddle(copy);
    const ranges = packRanges(copy);
    // Up to four pack bytes from the middle on, all inside one band-1 payload.
    const range = ranges.find(([a, b]) => middle >= a && middle < b)!;
    for (let i = middle; i < Math.min(middle + 4, range[1]); i++) copy[i]! ^= 0xff;
    return respond(res, new Response(copy).body!);
  });
}
