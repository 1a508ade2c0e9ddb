// The client of the pull-through cache's upstream registry (Docker Hub or any
// registry speaking its protocol): manifest and blob reads, authenticated as
// upstream-auth.ts describes. A definite "not there" (404) is null; anything
// else that is not an answer (unreachable, 5xx, 429, refused credentials) is
// an UpstreamError; a refusal is logged too, for the operator. Blob redirects
// (Docker Hub sends blobs from a CDN) are followed, and the Authorization
// header is not sent to another origin.
import { Readable } from 'node:stream';
import { Agent, fetch, type Response } from 'undici';
import type { Logger } from '../../common/logger.ts';
import { digestOf } from '../storage/content-digest.ts';
import type { ByteRange } from '../storage/blob-store.ts';
import { MediaTypes } from '../repository/manifest-document.ts';
import { tryParseDigest, type Digest } from '../references.ts';
import { UpstreamAuth, type UpstreamCredentials } from './upstream-auth.ts';
import { UpstreamError } from './upstream-error.ts';

export interface UpstreamManifest {
  readonly digest: Digest;
  readonly content: Buffer;
  readonly contentType: string;
}

const MANIFEST_ACCEPT = [MediaTypes.ociIndex, MediaTypes.ociManifest, MediaTypes.dockerManifestList, MediaTypes.dockerManifest].join(', ');
/** Largest manifest taken from upstream (the registry's own --max-manifest-size bounds pushes). */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export class UpstreamRegistry {
  readonly #base: string;
  readonly #auth: UpstreamAuth;
  readonly #dispatcher: Agent;
  readonly #log: Logger;

  constructor(url: URL, credentials: UpstreamCredentials | null, log: Logger) {
    this.#base = url.origin;
    this.#log = log.child({ component: 'mirror' });
    // Bounds on each wait, not on a whole transfer: a large layer may stream for minutes.
    this.#dispatcher = new Agent({ connectTimeout: 10_000, headersTimeout: 30_000, bodyTimeout: 60_000 });
    this.#auth = new UpstreamAuth(credentials, this.#dispatcher);
  }

  get origin(): string {
    return this.#base;
  }

  /** The digest a tag (or digest) points at upstream, from a HEAD; null when upstream has no such manifest. */
  async manifestDigest(name: string, reference: string, signal?: AbortSignal): Promise<Digest | null> {
    const res = await this.#request('HEAD', name, `manifests/${reference}`, { accept: MANIFEST_ACCEPT }, signal);
    if (res === null) return null;
    await res.body?.cancel();
    const digest = tryParseDigest(res.headers.get('docker-content-digest') ?? '');
    // Without the header, only a GET can tell.
    return digest ?? (await this.manifest(name, reference, signal))?.digest ?? null;
  }

  /** The manifest's bytes; for a digest reference they are checked against it. */
  async manifest(name: string, reference: string, signal?: AbortSignal): Promise<UpstreamManifest | null> {
    const res = await this.#request('GET', name, `manifests/${reference}`, { accept: MANIFEST_ACCEPT }, signal);
    if (res === null) return null;
    const declared = Number(res.headers.get('content-length') ?? 0);
    if (declared > MAX_MANIFEST_BYTES) {
      await res.body?.cancel();
      throw new UpstreamError(`upstream manifest ${name}:${reference} is larger than ${MAX_MANIFEST_BYTES} bytes`, { status: 502 });
    }
    const content = Buffer.from(await res.arrayBuffer());
    const expected = tryParseDigest(reference);
    const digest = tryParseDigest(digestOf(content, expected?.algorithm ?? 'sha256'))!;
    if (expected && expected.value !== digest.value) {
      throw new UpstreamError(`upstream manifest ${name}@${expected.value} has digest ${digest.value}`, { status: 502 });
    }
    return { digest, content, contentType: res.headers.get('content-type') ?? '' };
  }

  /** The blob's size, from a HEAD; null when upstream does not have it. */
  async blobSize(name: string, digest: Digest, signal?: AbortSignal): Promise<number | null> {
    const res = await this.#request('HEAD', name, `blobs/${digest.value}`, {}, signal);
    if (res === null) return null;
    await res.body?.cancel();
    const size = Number(res.headers.get('content-length'));
    if (!Number.isSafeInteger(size) || size < 0) throw new UpstreamError(`upstream blob ${digest.value} has no usable Content-Length`, { status: 502 });
    return size;
  }

  /** The blob's bytes (a range of them), streaming; null when upstream does not have it. */
  async blob(name: string, digest: Digest, range?: ByteRange, signal?: AbortSignal): Promise<{ size: number; body: Readable } | null> {
    const headers: Record<string, string> = range ? { range: `bytes=${range.start}-${range.end}` } : {};
    const res = await this.#request('GET', name, `blobs/${digest.value}`, headers, signal);
    if (res === null || res.body === null) return null;
    if (range && res.status !== 206) {
      await res.body.cancel();
      throw new UpstreamError(`upstream ignored a range request for ${digest.value}`, { status: 502 });
    }
    return { size: Number(res.headers.get('content-length') ?? NaN), body: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream) };
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  /** One request, answering one auth challenge; null on 404. */
  async #request(method: 'GET' | 'HEAD', name: string, path: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Response | null> {
    const url = `${this.#base}/v2/${name}/${path}`;
    const scope = `repository:${name}:pull`;
    let authorization = this.#auth.header(scope);
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, { method, headers: { ...headers, ...(authorization ? { authorization } : {}) }, dispatcher: this.#dispatcher, signal, redirect: 'follow' });
      } catch (err) {
        throw new UpstreamError(`${method} ${url}: ${(err as Error).message}`, { cause: err });
      }
      if (res.status === 401 && attempt === 0) {
        await res.body?.cancel();
        try {
          authorization = await this.#auth.answer(res.headers.get('www-authenticate'), scope, authorization, signal);
        } catch (err) {
          if (err instanceof UpstreamError && err.denied) this.#log.error({ upstream: this.#base, repository: name, err: err.message }, 'the upstream refused the mirror\'s credentials');
          throw err;
        }
        continue;
      }
      if (res.status === 200 || res.status === 206) return res;
      await res.body?.cancel();
      if (res.status === 404) return null;
      if (res.status === 429) throw new UpstreamError(`${method} ${url}: rate-limited (429)`, { status: 429, retryAfter: res.headers.get('retry-after') });
      if (res.status === 401 && authorization?.startsWith('Basic ')) {
        const err = new UpstreamError('the upstream registry refused this mirror\'s credentials (--proxy-username, --proxy-password)', { status: 401, denied: true });
        this.#log.error({ upstream: this.#base, repository: name, err: err.message }, 'the upstream refused the mirror\'s credentials');
        throw err;
      }
      if (res.status === 401 || res.status === 403) {
        // With the token it was just given: the mirror may not pull this repository.
        // (Docker Hub answers so for a repository that does not exist, too.)
        const err = new UpstreamError(`the upstream registry denies this mirror pull access to ${name} (or it does not exist there)`, { status: res.status, denied: true });
        this.#log.warn({ upstream: this.#base, repository: name, status: res.status }, 'the upstream registry denies the mirror this repository');
        throw err;
      }
      throw new UpstreamError(`${method} ${url}: ${res.status}`, { status: res.status });
    }
  }
}
