// Header rules at the proxy boundary, done in one pass over the raw headers:
// hop-by-hop headers dropped both ways (RFC 9110 §7.6.1), X-Forwarded-* and
// X-Real-IP set for the upstream (client-sent X-Forwarded-Proto/-Host,
// X-Real-IP and Forwarded dropped), the request id kept or made, and the checks
// RFC 9112 asks of an intermediary that the parser leaves to us (a repeated
// Host, transfer codings other than chunked, Transfer-Encoding in HTTP/1.0,
// versions other than 1.x). Host and the message framing are never taken from
// the pass-through list: the router writes them itself, after the headers named
// in Connection are dropped, so no Connection token can remove them.
// An HTTP/2 request goes through the same pass: its pseudo-headers are dropped,
// and `:authority` becomes the upstream's Host.
import { randomUUID } from 'node:crypto';

/** What the single pass over a request's headers found. */
export interface RequestHead {
  /**
   * Headers for the upstream, flat [name, value, ...]: Host and Content-Length (when the client sent
   * one) included, Transfer-Encoding never (the engine that forwards a chunked body says so itself).
   */
  headers: string[];
  /** Lowercase host without port ('' when the client sent none). */
  host: string;
  requestId: string;
  hasBody: boolean;
  /** The request came over HTTP/2 (no Connection header may be answered, the connection is shared). */
  http2: boolean;
  /** For the access log: the client's address, `HTTP/1.1`-style protocol, Referer and User-Agent. */
  remote: string;
  protocol: string;
  referer: string | undefined;
  agent: string | undefined;
  /** A reason to refuse the request, with the status to refuse it with. */
  reject: { status: 400 | 501 | 505; reason: string } | null;
}

const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;
const HOST_VALUE = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]*)(?::\d{1,5})?$/;

/** Whether a Host value (or an absolute-form authority) is a plain host[:port]. */
export function isValidHost(host: string): boolean {
  return HOST_VALUE.test(host);
}

/**
 * `versionMajor`/`versionMinor` as the parser read them: 1.0 and 1.1, but also 0.9 and 2.0.
 * `http2Body` is null for HTTP/1.x; for an HTTP/2 stream, whether a body follows its headers.
 * `targetAuthority`: the authority of an absolute-form target, which replaces Host (RFC 9112 §3.2.2).
 */
export function readRequestHead(raw: readonly string[], versionMajor: number, versionMinor: number, remoteAddress: string, proto: string, http2Body: boolean | null = null, targetAuthority: string | null = null): RequestHead {
  const headers: string[] = [];
  let host: string | null = null;
  let hostCount = 0;
  let authority: string | null = null;
  let cookie: string | null = null;
  let connection: string | null = null;
  let transferEncoding: string | null = null;
  let contentLength: string | null = null;
  let forwardedFor: string | null = null;
  let requestId: string | null = null;
  let referer: string | undefined;
  let agent: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    // HTTP/2 pseudo-headers (llhttp never lets ':' into an HTTP/1 header name).
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':authority') authority = value;
      continue;
    }
    switch (name.length) {
      // Dispatch on length first so that most headers cost one comparison.
      case 2:
        if (name.toLowerCase() === 'te') continue;
        break;
      case 4:
        if (name.toLowerCase() === 'host') {
          hostCount++;
          host = value;
          continue;
        }
        break;
      case 6:
        if (name.toLowerCase() === 'expect') continue; // node:http answered 100-continue already
        // HTTP/2 may split Cookie into crumbs; HTTP/1.1 needs them as one header (RFC 9113 §8.2.3).
        if (http2Body !== null && name === 'cookie') {
          cookie = cookie === null ? value : `${cookie}; ${value}`;
          continue;
        }
        break;
      case 7: {
        const lower = name.toLowerCase();
        if (lower === 'upgrade' || lower === 'trailer') continue;
        if (lower === 'referer') referer = value;
        break;
      }
      case 9: {
        // Client-sent forwarding claims are not trusted (X-Real-IP is set below).
        const lower = name.toLowerCase();
        if (lower === 'forwarded' || lower === 'x-real-ip') continue;
        break;
      }
      case 10: {
        const lower = name.toLowerCase();
        if (lower === 'connection') {
          connection = connection === null ? value : `${connection},${value}`;
          continue;
        }
        if (lower === 'keep-alive') continue;
        if (lower === 'user-agent') agent = value;
        break;
      }
      case 12:
        if (name.toLowerCase() === 'x-request-id') {
          if (REQUEST_ID.test(value)) requestId = value;
          continue;
        }
        break;
      case 14: {
        const lower = name.toLowerCase();
        if (lower === 'content-length') {
          contentLength = value;
          continue;
        }
        if (lower === 'http2-settings') continue;
        break;
      }
      case 15:
        if (name.toLowerCase() === 'x-forwarded-for') {
          forwardedFor = forwardedFor === null ? value : `${forwardedFor}, ${value}`;
          continue;
        }
        break;
      case 16: {
        const lower = name.toLowerCase();
        if (lower === 'x-forwarded-host' || lower === 'proxy-connection') continue;
        break;
      }
      case 17: {
        const lower = name.toLowerCase();
        if (lower === 'transfer-encoding') {
          transferEncoding = transferEncoding === null ? value : `${transferEncoding},${value}`;
          continue;
        }
        if (lower === 'x-forwarded-proto') continue;
        break;
      }
    }
    headers.push(name, value);
  }

  let reject: RequestHead['reject'] = null;
  if (http2Body !== null) {
    // RFC 9113 §8.3.1: :authority, else Host; the upstream (HTTP/1.1) needs it as Host.
    host = authority ?? host;
    hostCount = host === null ? 0 : 1;
    if (host === null) reject = { status: 400, reason: 'HTTP/2 request without :authority or Host' };
    if (cookie !== null) headers.push('cookie', cookie);
  }
  if (hostCount > 1) reject = { status: 400, reason: 'more than one Host header' };
  else if (host !== null && !HOST_VALUE.test(host)) reject = { status: 400, reason: 'invalid Host header' };
  // An absolute-form target's authority replaces Host, for routing and upstream alike.
  if (targetAuthority !== null) host = targetAuthority;
  if (transferEncoding !== null) {
    // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
    if (versionMinor === 0) reject = { status: 400, reason: 'Transfer-Encoding in an HTTP/1.0 request' };
    else if (transferEncoding.trim().toLowerCase() !== 'chunked') reject = { status: 501, reason: 'unsupported transfer coding' };
  }
  // llhttp lets `GET / HTTP/2.0` and HTTP/0.9 (`GET /`, no version) through; neither is HTTP/1.x framing.
  if (versionMajor !== 1 && http2Body === null) reject = versionMajor > 1 ? { status: 505, reason: 'unsupported HTTP version' } : { status: 400, reason: 'HTTP/0.9 request' };

  // Only the pass-through list so far: Host, the framing and our own fields are added after.
  if (connection !== null) dropConnectionListed(headers, connection);
  if (host !== null) headers.push('host', host);
  if (contentLength !== null) headers.push('content-length', contentLength);
  const id = requestId ?? randomUUID();
  headers.push(
    'x-forwarded-for', forwardedFor === null ? remoteAddress : `${forwardedFor}, ${remoteAddress}`,
    'x-forwarded-proto', proto,
    'x-real-ip', remoteAddress,
    'x-request-id', id,
  );
  if (host !== null) headers.push('x-forwarded-host', host);
  return {
    headers,
    host: host === null ? '' : normalizeHost(host),
    requestId: id,
    hasBody: http2Body ?? (transferEncoding !== null || (contentLength !== null && contentLength !== '0')),
    http2: http2Body !== null,
    reject,
    remote: remoteAddress,
    protocol: http2Body !== null ? 'HTTP/2.0' : versionMinor === 0 ? 'HTTP/1.0' : 'HTTP/1.1',
    referer,
    agent,
  };
}

/** Lowercase, without port or trailing dot; IPv6 literals keep their brackets. */
export function normalizeHost(host: string): string {
  let end = host.length;
  if (host.charCodeAt(0) === 91 /* [ */) {
    end = host.indexOf(']') + 1;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) end = colon;
  }
  if (host.charCodeAt(end - 1) === 46 /* . */) end--;
  const bare = end === host.length ? host : host.slice(0, end);
  return bare.toLowerCase();
}

/** Headers named in Connection are hop-by-hop too (RFC 9110 §7.6.1). */
function dropConnectionListed(headers: string[], connection: string): void {
  const listed = connection.toLowerCase().split(',').map((t) => t.trim()).filter((t) => t !== '' && t !== 'close' && t !== 'keep-alive');
  if (listed.length === 0) return;
  let out = 0;
  for (let i = 0; i < headers.length; i += 2) {
    if (listed.includes(headers[i].toLowerCase())) continue;
    headers[out++] = headers[i];
    headers[out++] = headers[i + 1];
  }
  headers.length = out;
}
