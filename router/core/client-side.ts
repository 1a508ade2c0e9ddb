// What a protocol adapter (HTTP/1.1, HTTP/2) gives the request core for one
// request: where the request body comes from and where the response goes, in
// the adapter's own framing. The core never writes protocol bytes to a client;
// the adapter never decides about backends, retries or errors.
import type { Socket } from 'node:net';
import type { Backend } from '../table/backend.ts';
import type { ParsedResponse } from '../protocols/http1/response-head.ts';
import type { UpstreamPool } from './upstream-pool.ts';

export interface ClientSide {
  /** The upstream pool of a backend (one per backend per listener). */
  poolFor(backend: Backend): UpstreamPool;
  /** Every byte of the request body went to the upstream. */
  readonly bodyComplete: boolean;
  /** Some body bytes left the client side: another attempt could not replay them. */
  readonly bodyConsumed: boolean;
  /** The client is gone: nothing more can be written to it. */
  readonly closed: boolean;
  /** Bytes written to the client are still queued (they may be the upstream read buffer's). */
  readonly writePending: boolean;
  /**
   * Forwards the request body to `upstream`: what the adapter holds now, then as it arrives, with
   * backpressure; calls the exchange's onRequestSent() once the body is complete.
   */
  sendBody(upstream: Socket): void;
  /** The upstream connection drained: more body may go. */
  resumeBody(): void;
  /**
   * The response head, to be framed for this client (HTTP/1.1: the head bytes; HTTP/2: a HEADERS
   * frame). Returns whether the body is forwarded as the upstream chunked it (HTTP/1.1 clients);
   * false: the exchange hands over the decoded data only. `extraFields`: response fields the core
   * adds after the backend's (flat [name, value, ...], names lowercase; e.g. a sticky Set-Cookie), or null.
   */
  respond(res: ParsedResponse, requestId: string, hsts: string | null, extraFields: readonly string[] | null): boolean;
  /** Body bytes; false when the client is not keeping up (the exchange pauses the upstream). */
  write(data: Buffer): boolean;
  /** The response is complete. */
  end(): void;
  /** A response that started cannot complete: the client must see it cut short, never complete. */
  cut(): void;
  /** The router's own answer (502/503/504) before any response started. */
  fail(status: number, requestId: string, hsts: string | null): void;
}
