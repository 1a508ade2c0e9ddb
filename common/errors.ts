// The one error table of Tug. Every error a Tug component raises on purpose is
// a TugError with a stable code; callers branch on `code`, never on messages.
// Registry protocol errors (issue: registry) get their own table of OCI codes.

export const ErrorCodes = {
  CONFIG_INVALID: 'TUG_CONFIG_INVALID',
  ETCD_UNAVAILABLE: 'TUG_ETCD_UNAVAILABLE',
  ETCD_WATCH_CANCELED: 'TUG_ETCD_WATCH_CANCELED',
  ETCD_VALUE_INVALID: 'TUG_ETCD_VALUE_INVALID',
  UPSTREAM_CONNECT: 'TUG_UPSTREAM_CONNECT',
  UPSTREAM_TIMEOUT: 'TUG_UPSTREAM_TIMEOUT',
  UPSTREAM_RESET: 'TUG_UPSTREAM_RESET',
  NO_BACKEND: 'TUG_NO_BACKEND',
  CLOSED: 'TUG_CLOSED',
  UNIT_INVALID: 'TUG_UNIT_INVALID',
  FLEET_UNREACHABLE: 'TUG_FLEET_UNREACHABLE',
  FLEET_REJECTED: 'TUG_FLEET_REJECTED',
  FLEET_ERROR: 'TUG_FLEET_ERROR',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class TugError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TugError';
    this.code = code;
  }
}

/** A configuration value that cannot be used; the message names the flag and what it accepts. */
export function configError(message: string): TugError {
  return new TugError(ErrorCodes.CONFIG_INVALID, message);
}

/** A value stored in etcd that Tug cannot use; the message names the key. */
export function etcdValueError(key: string, reason: string): TugError {
  return new TugError(ErrorCodes.ETCD_VALUE_INVALID, `${key}: ${reason}`);
}
