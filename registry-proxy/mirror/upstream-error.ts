// The upstream registry of the pull-through cache could not answer (down,
// refused, rate-limited, denied). Never a "not found": those are null results.
// The mirror serves what it has stored instead, and when it has nothing the
// client gets 503 UNAVAILABLE, 429 TOOMANYREQUESTS when the upstream
// rate-limits, or 403 DENIED with the reason when the upstream (or its token
// server) refuses the mirror's credentials or access: waiting will not help,
// and the client's own credentials cannot (registryError).
import { RegistryError } from '../registry-errors.ts';

export class UpstreamError extends Error {
  /** The upstream's status, when it answered. */
  readonly status: number | null;
  readonly retryAfter: string | null;
  /** The upstream refused the mirror's credentials or access; the message says so in words for the client. */
  readonly denied: boolean;

  constructor(message: string, options: { status?: number; retryAfter?: string | null; denied?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'UpstreamError';
    this.status = options.status ?? null;
    this.retryAfter = options.retryAfter ?? null;
    this.denied = options.denied ?? false;
  }

  /** What the client is told when nothing stored can stand in. */
  registryError(): RegistryError {
    if (this.denied) return new RegistryError('DENIED', this.message, { cause: this });
    if (this.status === 429) {
      return new RegistryError('TOOMANYREQUESTS', 'the upstream registry rate-limits this mirror', { cause: this, ...(this.retryAfter ? { headers: { 'Retry-After': this.retryAfter } } : {}) });
    }
    return new RegistryError('UNAVAILABLE', 'the upstream registry is unavailable', { cause: this });
  }
}
