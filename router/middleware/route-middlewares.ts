// A route's middlewares, compiled once when its rule is applied (never per
// request), and the three phases the request core calls for a route that has
// any (a route without: Route.middlewares is null, and nothing here runs):
//   1. request: allow/deny, rate limit, CORS preflight, basic auth, a declared
//      body above maxBodySize — each may answer locally (route-request.ts);
//      then the path and request-header rewrite for the upstream request.
//   2. response head: header set/remove, CORS fields, compression's
//      Content-Encoding and Vary (a ResponseEdits every adapter honours); for a
//      WebSocket upgrade's answer only the header set/remove (upgradeEdits).
//   3. response body: the encoder between the exchange and the client
//      (compression.ts); maxBodySize on a streamed request body (the adapters
//      count, Exchange.bodyTooLarge decides).
// Never: hold per-request state (that is ShapedRequest's), or touch a socket.
import type { RequestHead } from '../core/forward-headers.ts';
import type { ResponseEdits } from '../core/response-edits.ts';
import { BasicAuth, type BasicAuthEnv } from './basic-auth.ts';
import type { ClusterShare } from './cluster-share.ts';
import { Compression, MIN_LENGTH, negotiateEncoding, type Encoding } from './compression.ts';
import { Cors, CORS_FIELDS } from './cors.ts';
import { HeaderEdits, headerValue } from './header-edits.ts';
import { IpFilter } from './ip-filter.ts';
import { refusal, type LocalAnswer } from './local-answer.ts';
import type { MiddlewareSpec } from './middleware-spec.ts';
import { PathRewrite } from './path-rewrite.ts';
import { RateLimiter } from './rate-limit.ts';
import { NO_BODY, responseField, type ParsedResponse } from '../protocols/http1/response-head.ts';

/** What compiled middlewares share in one worker: the cluster's rate share, the bound on bcrypt checks, the shared user lists. */
export interface MiddlewareEnv extends BasicAuthEnv {
  readonly share: ClusterShare;
}

const TOO_LARGE = refusal(413, 'request body above maxBodySize');
const FORBIDDEN = refusal(403, 'client address not allowed');

export class RouteMiddlewares {
  readonly #ipFilter: IpFilter | null;
  readonly #rateLimit: RateLimiter | null;
  readonly #cors: Cors | null;
  readonly #auth: BasicAuth | null;
  /** Bytes, or -1 for no limit. */
  readonly maxBodySize: number;
  readonly #rewrite: PathRewrite | null;
  readonly #requestHeaders: HeaderEdits | null;
  readonly #responseHeaders: HeaderEdits | null;
  readonly #compression: Compression | null;
  /** Whether responses need a look at all (header edits, CORS, compression). */
  readonly #shapesResponses: boolean;
  /** The edits of a WebSocket upgrade's answer: `responseHeaders` alone, made once. */
  readonly upgradeEdits: ResponseEdits | null;

  constructor(spec: MiddlewareSpec, env: MiddlewareEnv) {
    this.#ipFilter = spec.allow === null && spec.deny === null ? null : new IpFilter(spec.allow, spec.deny);
    this.#rateLimit = spec.rateLimit === null ? null : new RateLimiter(spec.rateLimit, env.share);
    this.#cors = spec.cors === null ? null : new Cors(spec.cors);
    this.#auth = spec.basicAuth === null ? null : new BasicAuth(spec.basicAuth, env);
    this.maxBodySize = spec.maxBodySize ?? -1;
    this.#rewrite = spec.stripPrefix === null && spec.addPrefix === null ? null : new PathRewrite(spec.stripPrefix, spec.addPrefix);
    this.#requestHeaders = spec.requestHeaders === null ? null : new HeaderEdits(spec.requestHeaders);
    this.#responseHeaders = spec.responseHeaders === null ? null : new HeaderEdits(spec.responseHeaders);
    this.#compression = spec.compress === null ? null : new Compression(spec.compress);
    this.#shapesResponses = this.#responseHeaders !== null || this.#cors !== null || this.#compression !== null;
    // CORS does not govern WebSockets (the app checks Origin itself) and a 101 has no body to compress.
    this.upgradeEdits = this.#responseHeaders === null ? null : { remove: this.#responseHeaders.dropNames, add: this.#responseHeaders.add, reframe: false };
  }

  /**
   * Phase 1, the checks, in this order: address, rate, CORS preflight (browsers send no credentials
   * with one), credentials, declared body size. null: go on; an answer: the router answers; a
   * promise (a password check): settles to either.
   */
  check(method: string, head: RequestHead): LocalAnswer | Promise<LocalAnswer | null> | null {
    if (this.#ipFilter !== null && !this.#ipFilter.admits(head.remote)) return FORBIDDEN;
    if (this.#rateLimit !== null) {
      const limited = this.#rateLimit.take(head.remote, Date.now());
      if (limited !== null) return limited;
    }
    if (this.#cors !== null) {
      const preflight = this.#cors.preflight(method, head.headers);
      if (preflight !== null) return preflight;
    }
    if (this.maxBodySize >= 0) {
      const declared = headerValue(head.headers, 'content-length');
      if (declared !== null && Number(declared) > this.maxBodySize) return TOO_LARGE;
    }
    return this.#auth === null ? null : this.#auth.check(head.headers);
  }

  /** Phase 1, once the checks passed: rewrites the request headers in place; returns what the upstream request and the response phases need. */
  shape(method: string, head: RequestHead, path: string): ShapedRequest {
    this.#requestHeaders?.applyTo(head.headers);
    const upstreamPath = this.#rewrite === null ? path : this.#rewrite.apply(path);
    if (!this.#shapesResponses) return new ShapedRequest(this, upstreamPath, null, null);
    const origin = this.#cors === null ? null : this.#cors.allowedOrigin(head.headers);
    let encoding: Encoding | null = null;
    if (this.#compression !== null && method !== 'HEAD' && headerValue(head.headers, 'range') === null) encoding = negotiateEncoding(headerValue(head.headers, 'accept-encoding'));
    return new ShapedRequest(this, upstreamPath, origin, encoding);
  }

  /** Phase 2: the edits of one response head, and whether its body is encoded (and how). */
  responseEdits(res: ParsedResponse, origin: string | null, acceptable: Encoding | null): { edits: ResponseEdits | null; encoding: Encoding | null } {
    const remove: string[] = [];
    const add: string[] = [];
    let encoding: Encoding | null = null;
    if (this.#responseHeaders !== null) {
      remove.push(...this.#responseHeaders.dropNames);
      add.push(...this.#responseHeaders.add);
    }
    if (origin !== null) {
      remove.push(...CORS_FIELDS);
      add.push(...this.#cors!.allowFields(origin));
    }
    if (this.#compression !== null && this.#compression.compressible(responseField(res, 'content-type'))) {
      const coded = responseField(res, 'content-encoding');
      if (coded === null || coded.toLowerCase() === 'identity') {
        add.push('vary', 'Accept-Encoding');
        if (acceptable !== null && res.framing !== NO_BODY && res.status >= 200 && res.status < 300 && res.status !== 204 && res.status !== 206
          && (res.contentLength < 0 || res.contentLength >= MIN_LENGTH) && !noTransform(responseField(res, 'cache-control'))) {
          encoding = acceptable;
          remove.push('content-encoding', 'etag');
          add.push('content-encoding', acceptable);
          const etag = responseField(res, 'etag');
          if (etag !== null) add.push('etag', etag.startsWith('W/') ? etag : `W/${etag}`);
        }
      }
    }
    if (remove.length === 0 && add.length === 0) return { edits: null, encoding: null };
    return { edits: { remove, add, reframe: encoding !== null }, encoding };
  }
}

function noTransform(cacheControl: string | null): boolean {
  return cacheControl !== null && /(?:^|,)\s*no-transform\s*(?:,|$)/i.test(cacheControl);
}

/** One request's part of the middlewares, once its checks passed: the backend's path, and what its response phases need. */
export class ShapedRequest {
  readonly #middlewares: RouteMiddlewares;
  readonly upstreamPath: string;
  readonly #origin: string | null;
  readonly #encoding: Encoding | null;

  constructor(middlewares: RouteMiddlewares, upstreamPath: string, origin: string | null, encoding: Encoding | null) {
    this.#middlewares = middlewares;
    this.upstreamPath = upstreamPath;
    this.#origin = origin;
    this.#encoding = encoding;
  }

  get maxBodySize(): number {
    return this.#middlewares.maxBodySize;
  }

  responseEdits(res: ParsedResponse): { edits: ResponseEdits | null; encoding: Encoding | null } {
    return this.#middlewares.responseEdits(res, this.#origin, this.#encoding);
  }

  /** The edits of the answer to a WebSocket upgrade (its 101, or a refusal the backend relays). */
  get upgradeEdits(): ResponseEdits | null {
    return this.#middlewares.upgradeEdits;
  }
}
