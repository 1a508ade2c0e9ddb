// basicAuth against a shared user list (`"usersKey": "<name>"`, the value of
// `/auth/<name>`) through the real router (two workers) and a real etcd, over
// HTTP/1.1 and HTTP/2: several routes authenticate against one list; a change
// to it applies to all of them with no route re-put (and forgets remembered
// credentials); an invalid value keeps the last good list; a missing, never
// valid or deleted list refuses everyone (503), with the key in the access log
// and a warning; `/routes` and `tug status` show the references, never hashes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get } from '../helpers/http.ts';
import { h2request } from '../helpers/http2-client.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { TUG } from '../helpers/tug-process.ts';
import { waitFor } from '../helpers/wait.ts';

const ALICE = `alice:${bcrypt.hashSync('alice-pw', 6)}`;
const BOB = `bob:${bcrypt.hashSync('bob-pw', 6)}`;
const CAROL = `carol:${bcrypt.hashSync('carol-pw', 6)}`;

function basic(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

describe('basicAuth against a user list under /auth/', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let certs: TestCertificates;
  let echo: TestBackend;
  let session: ClientHttp2Session;

  const h1 = async (host: string, headers: Record<string, string> = {}): Promise<number> => (await get(router.httpPort, host, '/', { headers })).status;
  const h2 = async (host: string, headers: Record<string, string> = {}): Promise<number> => (await h2request(session, '/', { ':authority': host, ...headers })).status;
  /** The status on both protocols, asked several times: two workers, and the kernel picks one per connection. */
  const everywhere = async (host: string, headers: Record<string, string> = {}): Promise<number[]> => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push(await h1(host, headers), await h2(host, headers));
    return [...new Set(statuses)];
  };
  const logged = (match: (line: Record<string, unknown>) => boolean, what: string) => waitFor(() => router.logs().find(match), { what });
  const modRevision = async (key: string): Promise<number> => Number((JSON.parse(await etcd.etcdctl('get', key, '-w', 'json')) as { kvs: { mod_revision: number }[] }).kvs[0].mod_revision);

  before(async () => {
    certs = await TestCertificates.create();
    const cert = await certs.issue('auth.test', ['*.auth.test']);
    etcd = await EtcdServer.start();
    echo = await startBackend('echo');
    await etcd.put('/services/echo/@1', echo.address);
    await etcd.put('/auth/staff', `# the staff\n${ALICE}\n`);
    await etcd.put('/auth/broken', 'mallory:not-a-bcrypt-hash');
    const routes: Record<string, object> = {
      'staff-a': { hosts: ['a.auth.test'], service: 'echo', basicAuth: { usersKey: 'staff', realm: 'staff' } },
      'staff-b': { hosts: ['b.auth.test'], service: 'echo', basicAuth: { usersKey: 'staff' } },
      orphan: { hosts: ['orphan.auth.test'], service: 'echo', basicAuth: { usersKey: 'nobody' } },
      broken: { hosts: ['broken.auth.test'], service: 'echo', basicAuth: { usersKey: 'broken' } },
    };
    for (const [name, rule] of Object.entries(routes)) await etcd.put(`/routes/${name}`, JSON.stringify(rule));
    await etcd.put('/tls/auth', cert.etcdValue);
    router = await startRouter({ etcd: etcd.endpoint, https: true, workers: 2 });
    session = h2connect(`https://127.0.0.1:${router.httpsPort}`, { ca: await readFile(certs.caFile), servername: 'a.auth.test' });
    await waitFor(async () => (await h2('a.auth.test')) === 401, { what: 'the staff route over h2' });
  });

  after(async () => {
    session?.close();
    await router?.stop();
    await echo?.close();
    await etcd?.close();
    await certs?.close();
  });

  it('refuses a rule that gives both users and usersKey, or a usersKey that is no key name, when the rule is parsed', async () => {
    const { parseRouteRule } = await import('../../router/etcd/route-keys.ts');
    const bad: [object, RegExp][] = [
      [{ users: ALICE, usersKey: 'staff' }, /"basicAuth\.users" or "basicAuth\.usersKey", not both/],
      [{}, /"basicAuth\.users" must be htpasswd lines/],
      [{ usersKey: 'a/b' }, /"basicAuth\.usersKey" must be the <name>/],
      [{ usersKey: '' }, /"basicAuth\.usersKey"/],
      [{ usersKey: 7 }, /"basicAuth\.usersKey"/],
      [{ usersKey: 'staff', user: 'x' }, /unknown basicAuth field "user"/],
    ];
    for (const [basicAuth, reason] of bad) {
      const parsed = parseRouteRule(JSON.stringify({ service: 'echo', basicAuth }));
      assert.equal(typeof parsed, 'string', JSON.stringify(basicAuth));
      assert.match(parsed as string, reason);
    }
    // The router refuses such a rule too, naming the key, and never serves it.
    await etcd.put('/routes/both', JSON.stringify({ hosts: ['both.auth.test'], service: 'echo', basicAuth: { users: ALICE, usersKey: 'staff' } }));
    await logged((l) => l.key === '/routes/both' && /not both/.test(String(l.err)), 'the refused rule in the log');
    assert.equal(await h1('both.auth.test', basic('alice', 'alice-pw')), 404);
    assert.equal((await router.routes()).routes.both, undefined);
  });

  it('authenticates every route that refers to the list against it, on HTTP/1.1 and HTTP/2', async () => {
    const before = echo.requests.length;
    for (const host of ['a.auth.test', 'b.auth.test']) {
      assert.deepEqual(await everywhere(host), [401], `${host} without credentials`);
      assert.deepEqual(await everywhere(host, basic('alice', 'wrong')), [401], `${host} with a wrong password`);
      assert.deepEqual(await everywhere(host, basic('bob', 'bob-pw')), [401], `${host} with a user not in the list`);
    }
    assert.equal(echo.requests.length, before, 'no refused request reached the backend');
    const challenge = await get(router.httpPort, 'a.auth.test');
    assert.equal(challenge.headers['www-authenticate'], 'Basic realm="staff", charset="UTF-8"');
    for (const host of ['a.auth.test', 'b.auth.test']) assert.deepEqual(await everywhere(host, basic('alice', 'alice-pw')), [200], host);

    const table = await router.routes();
    assert.deepEqual(table.routes['staff-a'].middlewares.basicAuth, { usersKey: 'staff', realm: 'staff', key: '/auth/staff', resolves: true, userCount: 1 });
    assert.deepEqual(table.userLists.staff, { key: '/auth/staff', resolves: true, userCount: 1, routes: ['staff-a', 'staff-b'] });
    assert.doesNotMatch(JSON.stringify(table), /\$2[aby]\$/, '/routes never shows a hash');
  });

  it('applies a changed list to every route that refers to it, with no route re-put, and forgets credentials remembered under the old list', async () => {
    const routeRevisions = [await modRevision('/routes/staff-a'), await modRevision('/routes/staff-b')];
    // alice passed before, so her credentials are remembered: only a new list can refuse her now.
    await etcd.put('/auth/staff', `${BOB}\n${CAROL}\n`);
    const put = performance.now();
    await waitFor(async () => (await everywhere('a.auth.test', basic('alice', 'alice-pw'))).join() === '401' && (await everywhere('b.auth.test', basic('alice', 'alice-pw'))).join() === '401', { what: 'alice refused on both routes' });
    const applied = performance.now() - put;
    for (const host of ['a.auth.test', 'b.auth.test']) {
      assert.deepEqual(await everywhere(host, basic('bob', 'bob-pw')), [200], host);
      assert.deepEqual(await everywhere(host, basic('carol', 'carol-pw')), [200], host);
    }
    assert.deepEqual([await modRevision('/routes/staff-a'), await modRevision('/routes/staff-b')], routeRevisions, 'the routes were not touched');
    const line = await logged((l) => l.msg === 'user list applied' && l.key === '/auth/staff' && l.users === 2, 'the change in the log');
    assert.deepEqual(line.routes, ['staff-a', 'staff-b']);
    assert.equal((await router.routes()).userLists.staff.userCount, 2);
    // The poll includes requests on both protocols and workers; the change itself lands within milliseconds.
    assert.ok(applied < 4000, `the new list took ${Math.round(applied)} ms to apply`);
  });

  it('keeps the last good list when the key gets an invalid value, and says so naming the key', async () => {
    await etcd.put('/auth/staff', 'bob:plaintext-password');
    await logged((l) => l.key === '/auth/staff' && l.msg === 'ignoring invalid etcd value; the key keeps its last good value' && /bcrypt/.test(String(l.err)), 'the invalid value in the log');
    for (const host of ['a.auth.test', 'b.auth.test']) {
      assert.deepEqual(await everywhere(host, basic('bob', 'bob-pw')), [200], host);
      assert.deepEqual(await everywhere(host, basic('bob', 'plaintext-password')), [401], `${host}: the invalid value's password is not accepted`);
    }
    assert.deepEqual((await router.routes()).routes['staff-b'].middlewares.basicAuth, { usersKey: 'staff', realm: 'tug', key: '/auth/staff', resolves: true, userCount: 2 });
  });

  it('refuses every request to a route whose list does not exist or never had a valid value (503), naming the key in the access log and a warning', async () => {
    const before = echo.requests.length;
    for (const [host, key] of [['orphan.auth.test', '/auth/nobody'], ['broken.auth.test', '/auth/broken']]) {
      assert.deepEqual(await everywhere(host), [503], host);
      assert.deepEqual(await everywhere(host, basic('mallory', 'not-a-bcrypt-hash')), [503], host);
      assert.deepEqual(await everywhere(host, basic('bob', 'bob-pw')), [503], host);
      const route = host.split('.')[0];
      await logged((l) => l.level === 'warn' && l.route === route && l.key === key && /does not exist or has no valid value/.test(String(l.msg)), `the warning for ${route}`);
      await logged((l) => l.host === host && l.status === 503 && String(l.error).includes(`${key} does not exist or has no valid value`), `the access log of ${host}`);
      assert.deepEqual((await router.routes()).routes[route].middlewares.basicAuth.resolves, false);
    }
    assert.ok(router.logs().some((l) => l.key === '/auth/broken' && l.msg === 'ignoring invalid etcd value'), 'the invalid value is logged with its key');
    assert.equal(echo.requests.length, before, 'nothing reached the backend');
    // Putting the list makes the route work, and the log says so.
    await etcd.put('/auth/nobody', CAROL);
    await waitFor(async () => (await everywhere('orphan.auth.test', basic('carol', 'carol-pw'))).join() === '200', { what: 'the orphan route served once its list exists' });
    await logged((l) => l.route === 'orphan' && l.msg === 'basicAuth user list resolves again', 'the recovery in the log');
  });

  it('refuses everyone, remembered clients too, on the routes that refer to a deleted list, and says why', async () => {
    // bob's credentials are remembered on both routes from the tests before.
    await etcd.del('/auth/staff');
    await waitFor(async () => (await everywhere('a.auth.test', basic('bob', 'bob-pw'))).join() === '503' && (await everywhere('b.auth.test', basic('bob', 'bob-pw'))).join() === '503', { what: 'both routes refusing' });
    assert.deepEqual(await everywhere('a.auth.test'), [503]);
    const line = await logged((l) => l.level === 'warn' && l.key === '/auth/staff' && /user list deleted: the routes referring to it refuse every request/.test(String(l.msg)), 'the deletion in the log');
    assert.deepEqual(line.routes, ['staff-a', 'staff-b']);
    await logged((l) => l.host === 'b.auth.test' && l.status === 503 && String(l.error).includes('/auth/staff was deleted'), 'the access log of the refusal');
    assert.deepEqual((await router.routes()).userLists.staff, { key: '/auth/staff', resolves: false, userCount: 0, routes: ['staff-a', 'staff-b'] });

    const { code, stdout: status } = await new Promise<{ code: unknown; stdout: string }>((resolve) => execFile(process.execPath, [TUG, 'status', '--etcd', etcd.endpoint], { timeout: 30_000 }, (err, stdout) => resolve({ code: err?.code ?? 0, stdout })));
    assert.equal(code, 1, 'tug status flags routes whose list is missing');
    assert.match(status, /staff-a +a\.auth\.test +\/ +echo +basic-auth=staff\(MISSING\)/);
    assert.match(status, /USER LISTS under \/auth\/ \(3\)\n.*\n {2}broken +MISSING .* +broken\n {2}nobody +1 +orphan\n {2}staff +MISSING .* +staff-a,staff-b\n/);
    assert.match(status, /\/auth\/broken: user list must be htpasswd lines/);

    await etcd.put('/auth/staff', ALICE);
    await waitFor(async () => (await everywhere('b.auth.test', basic('alice', 'alice-pw'))).join() === '200', { what: 'the staff routes served again' });
  });
});
