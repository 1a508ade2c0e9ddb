// A small client of the registry API for protocol tests: raw requests with
// fetch, plus the few steps most tests need (push a blob, push a manifest).
import { createHash } from 'node:crypto';

export function sha256(content: Buffer | string): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

export function sha512(content: Buffer | string): string {
  return `sha512:${createHash('sha512').update(content).digest('hex')}`;
}

export interface RequestOptions {
  readonly headers?: Record<string, string>;
  readonly body?: Buffer | string;
}

export class RegistryClient {
  readonly base: string;

  constructor(base: string) {
    this.base = base;
  }

  request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    return fetch(`${this.base}${path}`, { method, headers: options.headers, body: options.body, redirect: 'manual' });
  }

  /** Monolithic upload (POST ?digest=); returns the digest. */
  async pushBlob(repo: string, content: Buffer | string): Promise<string> {
    const digest = sha256(content);
    const res = await this.request('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      headers: { 'Content-Type': 'application/octet-stream' },
      body: content,
    });
    await res.arrayBuffer();
    if (res.status !== 201) throw new Error(`push blob to ${repo}: ${res.status}`);
    return digest;
  }

  /** Starts an upload session; returns its Location path. */
  async startUpload(repo: string): Promise<string> {
    const res = await this.request('POST', `/v2/${repo}/blobs/uploads/`);
    await res.arrayBuffer();
    if (res.status !== 202) throw new Error(`start upload in ${repo}: ${res.status}`);
    return res.headers.get('location')!;
  }

  putManifest(repo: string, reference: string, manifest: unknown, mediaType: string): Promise<Response> {
    const body = typeof manifest === 'string' || Buffer.isBuffer(manifest) ? manifest : JSON.stringify(manifest);
    return this.request('PUT', `/v2/${repo}/manifests/${reference}`, { headers: { 'Content-Type': mediaType }, body });
  }
}

/** The spec error code of an error response (and checks the body is the spec's shape). */
export async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { errors: { code: string; message: string }[] };
  if (!Array.isArray(body.errors) || typeof body.errors[0]?.code !== 'string') throw new Error(`not an error body: ${JSON.stringify(body)}`);
  return body.errors[0].code;
}
