// How acme-client reaches the ACME directory from this process: the extra CA
// of --acme-ca-file trusted for its HTTPS (besides Node's roots), acme-client's
// own retries turned off (a refused directory would otherwise hold an order for
// over a minute per request; retries belong to the renewal schedule, which
// backs off and jitters), and rate-limit answers noted with their Retry-After so
// a failed order waits at least that long; a request that got no answer at all
// fails with its own error (refused, timed out, certificate), which acme-client's
// retry handler would otherwise replace with a TypeError. acme-client keeps one axios instance
// per process: this is configured once, in the primary, before any order.
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { rootCertificates } from 'node:tls';
import acme from 'acme-client';

const RATE_LIMITED = 'urn:ietf:params:acme:error:rateLimited';

export interface RateLimit {
  /** When the directory answered 429 / rateLimited, epoch ms. */
  readonly at: number;
  /** Its Retry-After, epoch ms (null without one). */
  readonly retryAt: number | null;
  readonly detail: string;
}

let lastRateLimit: RateLimit | null = null;
let configured = false;

export function configureDirectoryTransport(caFile: string | null): void {
  if (configured) return;
  configured = true;
  const ca = caFile === null ? undefined : [...rootCertificates, readFileSync(caFile, 'utf8')];
  acme.axios.defaults.httpsAgent = new Agent({ keepAlive: true, ...(ca === undefined ? {} : { ca }) });
  acme.axios.defaults.timeout = 30_000;
  (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0;
  // Runs before acme-client's own handler (the first in the list): an error without `config`
  // passes through that handler as it is.
  const handlers = (acme.axios.interceptors.response as unknown as { handlers?: unknown[] }).handlers;
  if (Array.isArray(handlers)) {
    handlers.unshift({
      fulfilled: (response: unknown) => response,
      rejected: (error: { response?: unknown; message?: string; config?: { url?: string } }) => {
        if (error.response !== undefined) throw error;
        throw new Error(`${error.config?.url ?? 'the ACME directory'}: ${error.message ?? String(error)}`, { cause: error });
      },
      synchronous: false,
      runWhen: null,
    });
  }
  acme.axios.interceptors.response.use((response) => {
    const data = response.data as { type?: unknown; detail?: unknown } | undefined;
    if (response.status === 429 || data?.type === RATE_LIMITED) {
      lastRateLimit = { at: Date.now(), retryAt: retryAfter(response.headers['retry-after']), detail: typeof data?.detail === 'string' ? data.detail : `HTTP ${response.status}` };
    }
    return response;
  });
}

/** The directory's last rate-limit answer at or after `since` (epoch ms), if any. */
export function rateLimitSince(since: number): RateLimit | null {
  return lastRateLimit !== null && lastRateLimit.at >= since ? lastRateLimit : null;
}

function retryAfter(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Date.now() + seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : date;
}
