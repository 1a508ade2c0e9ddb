// The registry's one error table: every error a client can see is a row here,
// with the code, message and HTTP status that distribution's
// registry/api/errcode/register.go and the OCI distribution spec define. A
// handler throws a RegistryError; the server turns it into the spec's JSON body
// in one place (`registryErrorFrom`), so no stack trace or storage detail ever
// reaches a client.
import { BlobStoreError } from './storage/blob-store.ts';

export const RegistryErrorTable = {
  UNKNOWN: { status: 500, message: 'unknown error' },
  UNSUPPORTED: { status: 405, message: 'The operation is unsupported.' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  RANGE_INVALID: { status: 416, message: 'invalid content range' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNVERIFIED: { status: 400, message: 'manifest failed signature verification' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'blob unknown to registry' },
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  QUERY_PARAMETER_INVALID: { status: 400, message: 'invalid query parameter value' },
} as const satisfies Record<string, { status: number; message: string }>;

export type RegistryErrorCode = keyof typeof RegistryErrorTable;

export interface RegistryErrorOptions {
  /** Machine-readable detail for the client (the spec's `detail`). */
  readonly detail?: unknown;
  /** Overrides the table's status where the spec asks for another one (e.g. 413 for a too-large manifest). */
  readonly status?: number;
  /** Extra response headers (e.g. `Range` on a 416, `WWW-Authenticate` on a 401). */
  readonly headers?: Record<string, string>;
  readonly cause?: unknown;
}

export class RegistryError extends Error {
  readonly code: RegistryErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(code: RegistryErrorCode, message?: string, options: RegistryErrorOptions = {}) {
    super(message ?? RegistryErrorTable[code].message, { cause: options.cause });
    this.name = 'RegistryError';
    this.code = code;
    this.status = options.status ?? RegistryErrorTable[code].status;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  /** The spec's error body: `{"errors":[{"code","message","detail"}]}`. */
  toJSON(): { errors: { code: string; message: string; detail?: unknown }[] } {
    return { errors: [{ code: this.code, message: this.message, ...(this.detail === undefined ? {} : { detail: this.detail }) }] };
  }
}

/**
 * Maps anything thrown while serving a request to a RegistryError: storage
 * trouble is 503 UNAVAILABLE (the client retries; nothing committed is lost),
 * anything else is 500 UNKNOWN. The second value says whether to log it as a fault.
 */
export function registryErrorFrom(err: unknown): { error: RegistryError; fault: boolean } {
  if (err instanceof RegistryError) return { error: err, fault: err.status >= 500 };
  if (err instanceof BlobStoreError) return { error: new RegistryError('UNAVAILABLE', 'storage unavailable', { cause: err }), fault: true };
  return { error: new RegistryError('UNKNOWN', undefined, { cause: err }), fault: true };
}
