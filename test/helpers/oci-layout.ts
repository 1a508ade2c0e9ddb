// Builds container images without a Docker engine: OCI image layouts on disk
// (oci-layout, index.json, blobs/sha256/…) with gzip'd tar layers made here, a
// config, a manifest and, for several platforms, an image index. skopeo reads
// them with `oci:<dir>:<tag>`. Also a reader, to compare what comes back.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}

export function sha256(content: Buffer | string): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

/** A tar archive (ustar) of regular files, as `tar` writes them. */
export function tarOf(files: Record<string, Buffer | string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const data = typeof content === 'string' ? Buffer.from(content) : content;
    const header = Buffer.alloc(512);
    header.write(name, 0, 100, 'utf8');
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write(`${(1_700_000_000).toString(8).padStart(11, '0')}\0`, 136);
    header.write('        ', 148); // checksum field counts as spaces while summing
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    parts.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** An image being written into an OCI layout directory. */
export class OciLayoutWriter {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async writeBlob(content: Buffer | string, mediaType: string): Promise<Descriptor> {
    const bytes = typeof content === 'string' ? Buffer.from(content) : content;
    const digest = sha256(bytes);
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(this.dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    return { mediaType, digest, size: bytes.length };
  }

  /** A gzip'd tar layer of `files`, and the diff id (digest of the uncompressed tar) the config lists. */
  async writeLayer(files: Record<string, Buffer | string>, level = 6): Promise<{ descriptor: Descriptor; diffId: string }> {
    const tar = tarOf(files);
    return { descriptor: await this.writeBlob(gzipSync(tar, { level }), OCI_LAYER_GZIP), diffId: sha256(tar) };
  }

  /** A single-platform image: its layers, config and manifest. */
  async writeImage(layers: Record<string, Buffer | string>[], platform = { architecture: 'amd64', os: 'linux' }, level = 6): Promise<Descriptor> {
    const written = [];
    for (const files of layers) written.push(await this.writeLayer(files, level));
    const config = await this.writeBlob(JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      config: { Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: written.map((l) => l.diffId) },
    }), OCI_CONFIG);
    const manifest = await this.writeBlob(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config,
      layers: written.map((l) => l.descriptor),
    }), OCI_MANIFEST);
    return { ...manifest, platform };
  }

  /** An image index over several platform manifests. */
  async writeIndex(manifests: Descriptor[]): Promise<Descriptor> {
    return this.writeBlob(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }), OCI_INDEX);
  }

  /** Writes oci-layout and index.json naming `top` as `tag`. */
  async finish(top: Descriptor, tag: string): Promise<void> {
    await writeFile(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const { platform: _platform, ...descriptor } = top;
    await writeFile(join(this.dir, 'index.json'), JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ ...descriptor, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }));
  }
}

/** The digests of every blob in an OCI layout directory. */
export async function layoutBlobs(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'blobs', 'sha256'))).map((hex) => `sha256:${hex}`).sort();
}

export function readLayoutBlob(dir: string, digest: string): Promise<Buffer> {
  return readFile(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

/** The descriptor index.json gives `tag`. */
export async function layoutTag(dir: string, tag: string): Promise<Descriptor> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const found = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!found) throw new Error(`no tag ${tag} in ${dir}/index.json`);
  return found;
}

/**
 * Asserts that `pulled` holds the image `source` holds under `tag`: the same
 * top digest, the same set of blobs, every blob byte-identical.
 */
export async function assertSameImage(source: string, pulled: string, tag: string): Promise<void> {
  assert.equal((await layoutTag(pulled, tag)).digest, (await layoutTag(source, tag)).digest, 'the pulled image has the pushed digest');
  const sent = await layoutBlobs(source);
  assert.deepEqual(await layoutBlobs(pulled), sent, 'the same set of blobs came back');
  for (const digest of sent) {
    assert.ok((await readLayoutBlob(pulled, digest)).equals(await readLayoutBlob(source, digest)), `${digest} is byte-identical`);
  }
}
