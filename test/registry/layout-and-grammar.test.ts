// The storage layout is distribution's, byte for byte, and the name grammar is
// the spec's: these are the two things that must never drift, so they are
// pinned here without any server.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BlobNaming, StoragePaths } from '../../registry-proxy/storage/storage-paths.ts';
import { isRepositoryName, isTag, parseManifestReference, tryParseDigest } from '../../registry-proxy/references.ts';
import { parseContentRange, parseRangeHeader } from '../../registry-proxy/handlers/http-ranges.ts';

const HEX = 'ab'.repeat(32);
const digest = tryParseDigest(`sha256:${HEX}`)!;

describe('storage layout', () => {
  it('puts every object where distribution puts it', () => {
    const root = '/docker/registry/v2';
    assert.equal(StoragePaths.blobData(digest), `${root}/blobs/sha256/ab/${HEX}/data`);
    assert.equal(StoragePaths.layerLink('library/app', digest), `${root}/repositories/library/app/_layers/sha256/${HEX}/link`);
    assert.equal(StoragePaths.manifestRevisionLink('app', digest), `${root}/repositories/app/_manifests/revisions/sha256/${HEX}/link`);
    assert.equal(StoragePaths.tagCurrentLink('app', 'v1'), `${root}/repositories/app/_manifests/tags/v1/current/link`);
    assert.equal(StoragePaths.tagIndexLink('app', 'v1', digest), `${root}/repositories/app/_manifests/tags/v1/index/sha256/${HEX}/link`);
  });

  // The cases of distribution's azure driver TestPathToKey (non-legacy layout).
  it('names Azure blobs as distribution\'s Azure driver (v3) does, with and without a root directory', () => {
    const cases: [string, string, string][] = [
      ['', '/docker/registry/v2', 'docker/registry/v2'],
      ['opt', '/docker/registry/v2', 'opt/docker/registry/v2'],
      ['/opt/', '/docker/registry/v2', 'opt/docker/registry/v2'],
      ['/opt////', '/docker/registry/v2', 'opt/docker/registry/v2'],
      ['a/b/c/d/', '/docker/registry/v2', 'a/b/c/d/docker/registry/v2'],
    ];
    for (const [root, path, name] of cases) {
      const naming = new BlobNaming(root, false);
      assert.equal(naming.blobName(path), name, `root ${JSON.stringify(root)}`);
      assert.equal(naming.storagePath(name), path, `back from ${name}`);
    }
  });

  // distribution 2.x passes the storage path to Azure unchanged; with a root
  // directory (which 2.x lacks), the legacy cases of GitLab's TestPathToKey.
  it('names Azure blobs as distribution 2.x\'s Azure driver does with --legacy-root-prefix, a leading "/" kept', () => {
    const cases: [string, string, string][] = [
      ['', '/docker/registry/v2', '/docker/registry/v2'],
      ['/', '/docker/registry/v2', '/docker/registry/v2'],
      ['', StoragePaths.blobData(digest), StoragePaths.blobData(digest)],
      ['opt', '/docker/registry/v2', '/opt/docker/registry/v2'],
      ['/opt////', '/docker/registry/v2', '/opt/docker/registry/v2'],
      ['a/b/c/d/', '/docker/registry/v2', '/a/b/c/d/docker/registry/v2'],
    ];
    for (const [root, path, name] of cases) {
      const naming = new BlobNaming(root, true);
      assert.equal(naming.blobName(path), name, `root ${JSON.stringify(root)}`);
      assert.equal(naming.storagePath(name), path, `back from ${name}`);
    }
  });
});

describe('name grammar', () => {
  it('accepts the spec\'s repository names and refuses everything else', () => {
    for (const name of ['app', 'library/app', 'a/b/c', 'my-app', 'my__app', 'my.app', 'a1/b2', 'a---b']) assert.ok(isRepositoryName(name), name);
    for (const name of ['', 'App', '../etc', 'a/../b', 'a//b', '/a', 'a/', 'a_', '-a', 'a/.b', 'a___b', 'a b', 'a%2fb', `${'a'.repeat(256)}`]) {
      assert.ok(!isRepositoryName(name), name);
    }
  });

  it('accepts the spec\'s tags and refuses everything else', () => {
    for (const tag of ['latest', 'v1.2.3', '_x', 'A-b_c.d', 'a'.repeat(128)]) assert.ok(isTag(tag), tag);
    for (const tag of ['', '-x', '.x', 'a/b', 'a:b', 'a'.repeat(129), '..']) assert.ok(!isTag(tag), tag);
  });

  it('accepts sha256 and sha512 digests only, lowercase hex of the right length', () => {
    assert.ok(tryParseDigest(`sha256:${HEX}`));
    assert.ok(tryParseDigest(`sha512:${'0f'.repeat(64)}`));
    for (const value of [`sha256:${HEX.toUpperCase()}`, `sha256:${HEX}0`, 'sha256:', `md5:${'a'.repeat(32)}`, `sha384:${'a'.repeat(96)}`, HEX, `sha256:../${HEX}`]) {
      assert.equal(tryParseDigest(value), null, value);
    }
  });

  it('reads a manifest reference as a digest when it has a colon, else as a tag', () => {
    assert.deepEqual(parseManifestReference('v1'), { kind: 'tag', tag: 'v1' });
    assert.equal(parseManifestReference(`sha256:${HEX}`).kind, 'digest');
    assert.throws(() => parseManifestReference('sha256:nope'), { code: 'DIGEST_INVALID' });
    assert.throws(() => parseManifestReference('../x'), { code: 'TAG_INVALID' });
  });
});

describe('range headers', () => {
  it('parses one byte range of a blob, and says when it cannot be satisfied', () => {
    assert.equal(parseRangeHeader(undefined, 10), null);
    assert.deepEqual(parseRangeHeader('bytes=2-5', 10), { start: 2, end: 5 });
    assert.deepEqual(parseRangeHeader('bytes=2-', 10), { start: 2, end: 9 });
    assert.deepEqual(parseRangeHeader('bytes=-4', 10), { start: 6, end: 9 });
    assert.deepEqual(parseRangeHeader('bytes=5-100', 10), { start: 5, end: 9 });
    assert.equal(parseRangeHeader('bytes=10-12', 10), 'unsatisfiable');
    assert.equal(parseRangeHeader('bytes=0-1,4-5', 10), null, 'several ranges: the whole blob');
  });

  it('parses an upload chunk\'s Content-Range in the OCI and docker forms', () => {
    assert.deepEqual(parseContentRange('0-99'), { start: 0, end: 99 });
    assert.deepEqual(parseContentRange('bytes 100-199/*'), { start: 100, end: 199 });
    assert.equal(parseContentRange('9-3'), null);
    assert.equal(parseContentRange('x'), null);
  });
});
