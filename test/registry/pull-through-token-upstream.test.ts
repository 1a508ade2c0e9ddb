// `--proxy-remote` against an upstream that authenticates as Docker Hub does:
// Debian's docker-registry (distribution 2.8) with `auth: token`, trusting the
// real `tug registry token-server` (a self-signed certificate of its key is
// distribution's rootcertbundle). The mirror answers each 401 Bearer challenge
// by fetching a token from the realm, anonymously or with
// --proxy-username/--proxy-password; the token server's `token issued` log
// lines count what it fetched.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { AzuriteServer } from '../helpers/azurite.ts';
import { DistributionRegistry, distributionUnavailable } from '../helpers/distribution.ts';
import { layoutBlobs, OciLayoutWriter, readLayoutBlob, type Descriptor } from '../helpers/oci-layout.ts';
import { errorCode } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { skopeo } from '../helpers/skopeo.ts';
import { TokenServerProcess } from '../helpers/token-server.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const PUSHER = 'pusher:pusher-pw';
const MIRROR_USER = 'mirror';
const MIRROR_PASSWORD = 'mirror-secret';
const MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json';
/** The short-lived tokens' lifetime: the mirror renews at half of it, which must outlast a few concurrent blob fetches on a loaded machine. */
const SHORT_EXPIRY_S = 8;

const ACL = `
rules:
  - repositories: ["**"]
    users: [pusher]
    actions: [pull, push]
  - repositories: ["**"]
    users: [${MIRROR_USER}]
    actions: [pull]
  - repositories: ["public/**"]
    anonymous: true
    actions: [pull]
`;

/** One token-auth upstream: its token server and the distribution that trusts it. */
interface TokenUpstream {
  readonly tokens: TokenServerProcess;
  readonly registry: DistributionRegistry;
}

describe('pull-through cache of a token-auth upstream (distribution 2.8 and tug registry token-server)', { skip: distributionUnavailable() ?? false }, () => {
  let work: string;
  let azurite: AzuriteServer;
  /** Tokens for 5 minutes (the default): never renewed during the test. */
  let upstream: TokenUpstream;
  /** Tokens for SHORT_EXPIRY_S seconds. */
  let shortLived: TokenUpstream;
  let anonymous: RegistryProcess;
  let signedIn: RegistryProcess;
  let wrongPassword: RegistryProcess;
  let renewing: RegistryProcess;
  let images = 0;

  async function startUpstream(htpasswd: string, acl: string, args: string[] = [], keyAlgorithm?: string[]): Promise<TokenUpstream> {
    const tokens = await TokenServerProcess.start({ htpasswd, acl, args, keyAlgorithm });
    try {
      return { tokens, registry: await DistributionRegistry.start(join(work, `upstream-${tokens.port}`), { auth: tokens.distributionAuth }) };
    } catch (err) {
      await tokens.close();
      throw err;
    }
  }

  const mirrorOf = (of: TokenUpstream, container: string, credentials: string[] = []) => startRegistry({
    connectionString: azurite.connectionString,
    container,
    args: ['--proxy-remote', of.registry.url, ...credentials],
  });

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'tug-pull-through-token-'));
    const htpasswd = join(work, 'htpasswd');
    await writeFile(htpasswd, `pusher:${bcrypt.hashSync('pusher-pw', 5)}\n${MIRROR_USER}:${bcrypt.hashSync(MIRROR_PASSWORD, 5)}\n`);
    const acl = join(work, 'acl.yaml');
    await writeFile(acl, ACL);
    [azurite, upstream, shortLived] = await Promise.all([
      AzuriteServer.start(),
      startUpstream(htpasswd, acl),
      startUpstream(htpasswd, acl, ['--expiry', `${SHORT_EXPIRY_S}s`]),
    ]);
    const credentials = ['--proxy-username', MIRROR_USER, '--proxy-password', MIRROR_PASSWORD];
    [anonymous, signedIn, wrongPassword, renewing] = await Promise.all([
      mirrorOf(upstream, 'anonymous'),
      mirrorOf(upstream, 'signed-in', credentials),
      mirrorOf(upstream, 'wrong-password', ['--proxy-username', MIRROR_USER, '--proxy-password', 'not-the-password']),
      mirrorOf(shortLived, 'renewing', credentials),
    ]);
  });

  after(async () => {
    await Promise.all([anonymous, signedIn, wrongPassword, renewing].map((r) => r?.close()));
    await azurite?.close();
    for (const u of [upstream, shortLived]) {
      await u?.registry.close();
      await u?.tokens.close();
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Builds an image of three fresh random layers and pushes it to `to` as `repo:tag`, signed in as pusher (skopeo fetches its token). */
  async function pushUpstream(to: TokenUpstream, repo: string, tag: string): Promise<{ layout: string; top: Descriptor }> {
    const layout = join(work, `image-${images++}`);
    const writer = new OciLayoutWriter(layout);
    const top = await writer.writeImage([{ 'a.bin': randomBytes(300_000) }, { 'b.bin': randomBytes(200_000) }, { 'c.txt': randomBytes(2000).toString('hex') }], undefined, 1);
    await writer.finish(top, tag);
    await skopeo('copy', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', PUSHER, `oci:${layout}:${tag}`, `docker://${to.registry.host}/${repo}:${tag}`);
    return { layout, top };
  }

  /** skopeo copy from the mirror to a `dir:` (no credentials: the mirror is open on loopback); returns the directory. */
  async function pullToDir(mirror: RegistryProcess, ref: string): Promise<string> {
    const into = join(work, `pulled-${images++}`);
    await skopeo('copy', '--preserve-digests', '--src-tls-verify=false', '--src-no-creds', `docker://${mirror.host}/${ref}`, `dir:${into}`);
    return into;
  }

  /** The `dir:` holds the layout's image: the same manifest bytes and every blob byte-identical. */
  async function assertSameDir(layout: string, top: Descriptor, dir: string): Promise<void> {
    assert.ok((await readFile(join(dir, 'manifest.json'))).equals(await readLayoutBlob(layout, top.digest)), 'the same manifest');
    for (const digest of await layoutBlobs(layout)) {
      if (digest === top.digest) continue;
      assert.ok((await readFile(join(dir, digest.slice(7)))).equals(await readLayoutBlob(layout, digest)), `${digest} is byte-identical`);
    }
  }

  /** Token requests the server answered for `scope`, by `user` (null: anonymous). */
  const tokensFor = (from: TokenUpstream, user: string | null, scope: string) => from.tokens.issued().filter((t) => t.user === user && t.asked.includes(scope)).length;

  it('lets distribution 2.8 accept the token server\'s tokens: skopeo pushes through token auth, and no token is no entry', async () => {
    const { top } = await pushUpstream(upstream, 'public/accepted', 'v1');
    const res = await fetch(`${upstream.registry.url}/v2/public/accepted/manifests/v1`, { headers: { accept: MANIFEST_ACCEPT } });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', new RegExp(`^Bearer realm="${upstream.tokens.realm}",service="${upstream.tokens.service}",scope="repository:public/accepted:pull"`));
    const body = await (await fetch(`${upstream.tokens.realm}?service=${upstream.tokens.service}&scope=repository:public/accepted:pull`)).json() as { token: string };
    const granted = await fetch(`${upstream.registry.url}/v2/public/accepted/manifests/v1`, { headers: { accept: MANIFEST_ACCEPT, authorization: `Bearer ${body.token}` } });
    assert.equal(granted.status, 200, `distribution took an anonymous token for the public repository: ${upstream.registry.output.slice(-2000)}`);
    assert.equal(granted.headers.get('docker-content-digest'), top.digest);
  });

  it('lets distribution 2.8 accept tokens signed with an RSA key as well', async () => {
    const rsa = await startUpstream(join(work, 'htpasswd'), join(work, 'acl.yaml'), [], ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']);
    try {
      await pushUpstream(rsa, 'public/rsa', 'v1');
      assert.ok(rsa.tokens.issued().some((t) => t.user === 'pusher'), 'skopeo got its tokens from the RSA-keyed server');
    } finally {
      await rsa.registry.close();
      await rsa.tokens.close();
    }
  });

  it('pulls anonymously through the mirror, asking the token server once for the repository, not once per blob', async () => {
    const { layout, top } = await pushUpstream(upstream, 'public/anonymous', 'v1');
    const pulled = await pullToDir(anonymous, 'public/anonymous:v1');
    await assertSameDir(layout, top, pulled);
    assert.equal(tokensFor(upstream, null, 'repository:public/anonymous:pull'), 1, 'one anonymous token for a manifest and four blobs');
    // A second repository is a second scope: a token of its own.
    const other = await pushUpstream(upstream, 'public/second', 'v1');
    await assertSameDir(other.layout, other.top, await pullToDir(anonymous, 'public/second:v1'));
    assert.equal(tokensFor(upstream, null, 'repository:public/second:pull'), 1);
    assert.equal(tokensFor(upstream, null, 'repository:public/anonymous:pull'), 1, 'the first repository\'s token was not asked again');
  });

  it('sends --proxy-username/--proxy-password to the token realm, reaching what anonymous clients may not', async () => {
    const { layout, top } = await pushUpstream(upstream, 'private/app', 'v1');
    const refused = await fetch(`${anonymous.url}/v2/private/app/manifests/v1`, { headers: { accept: MANIFEST_ACCEPT } });
    assert.equal(refused.status, 403, 'the anonymous mirror is denied the private repository');
    assert.equal(await errorCode(refused), 'DENIED');
    await assertSameDir(layout, top, await pullToDir(signedIn, 'private/app:v1'));
    assert.equal(tokensFor(upstream, MIRROR_USER, 'repository:private/app:pull'), 1, 'one token, for the mirror\'s user');
  });

  it('tells the client the upstream refused the mirror\'s credentials when its password is wrong, and logs it', async () => {
    await pushUpstream(upstream, 'public/wrong', 'v1');
    const res = await fetch(`${wrongPassword.url}/v2/public/wrong/manifests/v1`, { headers: { accept: MANIFEST_ACCEPT }, signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 403);
    const body = await res.json() as { errors: { code: string; message: string }[] };
    assert.equal(body.errors[0].code, 'DENIED');
    assert.match(body.errors[0].message, /upstream.*refused.*credentials/i);
    await assert.rejects(pullToDir(wrongPassword, 'public/wrong:v1'), /denied: .*upstream.*refused.*credentials/i, 'skopeo shows why');
    await waitFor(() => wrongPassword.logs().some((l) => /refused.*credentials/.test(String(l.err ?? l.msg))), { timeout: 5000, what: 'the refusal in the mirror\'s log' });
  });

  it('renews an expired token once for concurrent requests of one repository', async () => {
    const repo = 'private/renewed';
    const scope = `repository:${repo}:pull`;
    const first = await pushUpstream(shortLived, repo, 'v1');
    const second = await pushUpstream(shortLived, repo, 'v2');
    await assertSameDir(first.layout, first.top, await pullToDir(renewing, `${repo}:v1`));
    const fetched = tokensFor(shortLived, MIRROR_USER, scope);
    assert.ok(fetched >= 1);
    assert.ok(shortLived.tokens.logs().some((l) => l.level === 'warn' && String(l.msg).includes('less than 60 s')), 'the token server warns of tokens this short');
    // Waiting out a clock, not a condition: the token's whole lifetime.
    await sleep(SHORT_EXPIRY_S * 1000);
    // The blobs of v2 the mirror does not hold, asked all at once: one renewal serves them all.
    const blobs = (await layoutBlobs(second.layout)).filter((d) => d !== second.top.digest);
    const bodies = await Promise.all(blobs.map(async (digest) => {
      const res = await fetch(`${renewing.url}/v2/${repo}/blobs/${digest}`);
      assert.equal(res.status, 200, digest);
      return Buffer.from(await res.arrayBuffer());
    }));
    for (const [i, digest] of blobs.entries()) assert.ok(bodies[i].equals(await readLayoutBlob(second.layout, digest)), `${digest} is byte-identical`);
    assert.equal(tokensFor(shortLived, MIRROR_USER, scope), fetched + 1, 'the expired token was renewed, once');
  });
});
