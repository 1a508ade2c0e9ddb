// The hostname grammar of route rules and ACME keys: lowercase labels (letters,
// digits, '_', '-'; 63 at most, no '-' at either end), optionally `*.` first.
// Its own module so that the key schemas (route-keys.ts, acme/acme-keys.ts)
// share it without importing each other.
export const HOST_NAME = /^(?:\*\.)?(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;
