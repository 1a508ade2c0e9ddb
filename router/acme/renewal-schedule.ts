// When a name's certificate is due, and how long to wait after failed orders:
// pure functions of times, so the policy reads in one place.
//
// Renewal at two thirds of the lifetime (Let's Encrypt's advice: 60 of 90 days,
// 30 left to retry in), or when less than --acme-renew-before remains. After a
// failure: --acme-retry, doubled per failure in a row, up to the ceiling, each
// wait jittered ±20% so that names that failed together do not retry together.

/** When the certificate valid from notBefore to notAfter (epoch ms) should be renewed. */
export function renewalTime(notBefore: number, notAfter: number, renewBefore: number | null): number {
  const twoThirds = notBefore + Math.floor(((notAfter - notBefore) * 2) / 3);
  return renewBefore === null ? twoThirds : Math.min(twoThirds, notAfter - renewBefore);
}

/** The wait after the `failures`-th failure in a row (1 = the first), ms. `random` in [0, 1). */
export function retryDelay(failures: number, base: number, max: number, random = Math.random()): number {
  const exponential = Math.min(max, base * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return Math.round(exponential * (0.8 + 0.4 * random));
}

/** A wait of about `ms`, jittered ±20%: how often a router looks again at a lock another router holds. */
export function jittered(ms: number, random = Math.random()): number {
  return Math.round(ms * (0.8 + 0.4 * random));
}
