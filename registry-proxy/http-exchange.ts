// One request and its response as the registry's handlers see them, and the
// few ways a handler answers. Every response carries the API version header
// docker checks for.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { RegistryError } from './registry-errors.ts';
import type { RequestAccess } from './auth/request-access.ts';

export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The request URL; handlers read only its query (`searchParams`): the path was matched as sent. */
  readonly url: URL;
  /** The repository name from the path ('' for routes without one). */
  readonly name: string;
  /** The route's other path parameters (reference, digest, upload id). */
  readonly params: readonly string[];
  /** Aborted when the client goes away before the response is complete; passed to storage calls. */
  readonly signal: AbortSignal;
  /** What the client may do (the gate already checked the route's own repository). */
  readonly access: RequestAccess;
}

export const API_VERSION_HEADER = { 'Docker-Distribution-API-Version': 'registry/2.0' } as const;

export function send(ex: Exchange, status: number, headers: OutgoingHttpHeaders = {}, body?: Buffer | string): void {
  const bytes = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : body;
  ex.res.writeHead(status, { ...API_VERSION_HEADER, 'Content-Length': bytes?.length ?? 0, ...headers });
  ex.res.end(ex.req.method === 'HEAD' ? undefined : bytes);
}

export function sendJson(ex: Exchange, status: number, value: unknown, headers: OutgoingHttpHeaders = {}): void {
  send(ex, status, { 'Content-Type': 'application/json', ...headers }, JSON.stringify(value));
}

/** Answers with the spec's error body, or cuts the connection when the response has already started. */
export function sendError(req: IncomingMessage, res: ServerResponse, error: RegistryError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(JSON.stringify(error.toJSON()));
  res.writeHead(error.status, {
    ...API_VERSION_HEADER,
    'Content-Type': 'application/json',
    'Content-Length': body.length,
    ...error.headers,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Whether the request carries a body (a PUT may or may not). */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** Reads a body of at most `limit` bytes; null when it is larger (the rest is not read). */
export async function readBodyUpTo(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}
