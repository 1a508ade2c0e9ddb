// `rateLimit`: a token bucket per client address ("per": "client-ip", the
// socket's peer) or for the whole route ("per": "route"), whose `average`
// (requests per second) and `burst` hold for the cluster: this worker refills
// at average × share and holds at most burst × share tokens (at least one),
// where share = 1 / (live routers × workers) (cluster-share.ts). Beyond it:
// 429 with Retry-After, the seconds until a token is back. Buckets live in the
// worker's memory, bounded: full ones are forgotten when there are too many.
import { refusal, type LocalAnswer } from './local-answer.ts';
import type { ClusterShare } from './cluster-share.ts';

export interface RateLimitSpec {
  /** Requests per second, cluster-wide. */
  readonly average: number;
  /** Requests admitted at once after a quiet period, cluster-wide. */
  readonly burst: number;
  readonly per: 'client-ip' | 'route';
}

const MAX_BUCKETS = 10_000;

export function parseRateLimit(value: unknown): RateLimitSpec | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return '"rateLimit" must be an object {"average", "burst"?, "per"?}';
  const { average, burst, per = 'client-ip', ...unknown } = value as Record<string, unknown>;
  if (Object.keys(unknown).length > 0) return `unknown rateLimit field ${JSON.stringify(Object.keys(unknown)[0])} (known: average, burst, per)`;
  if (typeof average !== 'number' || !Number.isFinite(average) || average <= 0 || average > 1e6) return '"rateLimit.average" must be requests per second, > 0 and <= 1000000';
  const b = burst ?? Math.max(1, Math.ceil(average));
  if (typeof b !== 'number' || !Number.isInteger(b) || b < 1 || b > 1e7) return '"rateLimit.burst" must be an integer >= 1';
  if (per !== 'client-ip' && per !== 'route') return '"rateLimit.per" must be "client-ip" or "route"';
  return { average, burst: b, per };
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly #spec: RateLimitSpec;
  readonly #share: ClusterShare;
  readonly #buckets = new Map<string, Bucket>();

  constructor(spec: RateLimitSpec, share: ClusterShare) {
    this.#spec = spec;
    this.#share = share;
  }

  /** Takes a token for a request from `remote`; a 429 answer when there is none. */
  take(remote: string, now: number): LocalAnswer | null {
    const key = this.#spec.per === 'route' ? '' : remote;
    const fraction = this.#share.fraction;
    const rate = (this.#spec.average * fraction) / 1000;
    const burst = Math.max(1, this.#spec.burst * fraction);
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= MAX_BUCKETS) this.#forgetFull(now, rate, burst);
      bucket = { tokens: burst, at: now };
      this.#buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(burst, bucket.tokens + (now - bucket.at) * rate);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return null;
    }
    const seconds = Math.max(1, Math.ceil((1 - bucket.tokens) / rate / 1000));
    return refusal(429, 'rate limit', ['retry-after', String(seconds)]);
  }

  /** Drops buckets that are full again (they behave as new ones); the oldest when none is. */
  #forgetFull(now: number, rate: number, burst: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + (now - bucket.at) * rate >= burst) this.#buckets.delete(key);
    }
    if (this.#buckets.size >= MAX_BUCKETS) this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}
