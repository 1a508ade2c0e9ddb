// The one place where an upstream failure becomes an HTTP status for the
// client (502/503/504, short body, never a stack trace) and a verdict for the
// backend's passive health.

export interface UpstreamFailure {
  readonly status: 502 | 503 | 504;
  /** Short reason for the log (the client sees only the status line). */
  readonly reason: string;
  /** Whether this failure counts against the backend's health. */
  readonly backendFault: boolean;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const code = (err as { code?: string } | null)?.code ?? '';
  if (TIMEOUT_CODES.has(code)) return { status: 504, reason: code, backendFault: true };
  if (code === 'UND_ERR_ABORTED' || code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
    return { status: 502, reason: code, backendFault: false };
  }
  return { status: 502, reason: code || (err instanceof Error ? err.message : 'upstream error'), backendFault: true };
}

/** Reason phrases of the statuses the router writes itself. */
export const statusText: Readonly<Record<number, string>> = {
  200: 'OK',
  204: 'No Content',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Content Too Large',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};
