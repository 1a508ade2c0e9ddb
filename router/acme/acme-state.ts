// The state of one name's ACME certificate, as stored in etcd
// (/acme/state/<host>) by whichever router last worked on it, so that every
// router shows it (/routes, /metrics) and respects a failure's backoff.

export const ACME_STATUSES = ['pending', 'valid', 'renewing', 'failing'] as const;
export type AcmeStatus = (typeof ACME_STATUSES)[number];

export interface AcmeState {
  /** pending: no certificate yet; valid: served until notAfter; renewing: an order runs, the old one serves; failing: the last order failed. */
  readonly status: AcmeStatus;
  /** notAfter of the certificate in /tls/acme-<host>, epoch ms, or null without one. */
  readonly notAfter: number | null;
  /** When the certificate is due for renewal, epoch ms. */
  readonly renewAt: number | null;
  /** Consecutive failed orders. */
  readonly failures: number;
  readonly lastError: string | null;
  /** No order before this (backoff after a failure, or the directory's Retry-After), epoch ms. */
  readonly retryAt: number | null;
  /** The router that wrote this ("<node>:<pid>:<nonce>"). */
  readonly by: string;
  readonly updatedAt: number;
}

/** Parses a state value; a reason string when it is not one. */
export function parseAcmeState(raw: string): AcmeState | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return 'ACME state must be JSON';
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 'ACME state must be a JSON object';
  const s = parsed as Record<string, unknown>;
  if (!ACME_STATUSES.includes(s.status as AcmeStatus)) return `"status" must be one of ${ACME_STATUSES.join(', ')}`;
  const time = (v: unknown) => v === null || v === undefined ? null : typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? Date.parse(v) : undefined;
  const notAfter = time(s.notAfter);
  const renewAt = time(s.renewAt);
  const retryAt = time(s.retryAt);
  const updatedAt = time(s.updatedAt);
  if (notAfter === undefined || renewAt === undefined || retryAt === undefined || updatedAt === undefined || updatedAt === null) return 'times must be ISO 8601 strings';
  const failures = s.failures ?? 0;
  if (!Number.isInteger(failures) || (failures as number) < 0) return '"failures" must be a count';
  return {
    status: s.status as AcmeStatus,
    notAfter,
    renewAt,
    failures: failures as number,
    lastError: typeof s.lastError === 'string' ? s.lastError : null,
    retryAt,
    by: typeof s.by === 'string' ? s.by : '',
    updatedAt,
  };
}

/** The state as JSON (times as ISO strings): what etcd stores and /routes shows. */
export function acmeStateJSON(state: AcmeState): object {
  const iso = (ms: number | null) => ms === null ? null : new Date(ms).toISOString();
  return {
    status: state.status,
    notAfter: iso(state.notAfter),
    renewAt: iso(state.renewAt),
    failures: state.failures,
    lastError: state.lastError,
    retryAt: iso(state.retryAt),
    by: state.by,
    updatedAt: iso(state.updatedAt),
  };
}
