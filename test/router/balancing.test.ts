// Balancing: how the router spreads requests over a service's backends, with
// real backends and a real router process. Every request goes on a fresh client
// connection, so what is counted is the router's choice, not client pooling.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get, type Reply } from '../helpers/http.ts';
import { freePort } from '../helpers/ports.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';

/** How many of `backends`' recorded requests carry each backend's name, in order. */
function counts(backends: readonly TestBackend[]): number[] {
  return backends.map((b) => b.requests.length);
}

function forget(backends: readonly TestBackend[]): void {
  for (const b of backends) b.requests.length = 0;
}

async function sequential(port: number, host: string, n: number): Promise<Reply[]> {
  const replies: Reply[] = [];
  for (let i = 0; i < n; i++) replies.push(await get(port, host));
  return replies;
}

/** Waits until every one of `backends` has answered through `host` (so every worker has the whole service). */
async function waitRouted(port: number, host: string, backends: readonly TestBackend[], what: string): Promise<void> {
  const seen = new Set<string>();
  await waitFor(async () => {
    const reply = await get(port, host);
    if (reply.status === 200) seen.add(reply.body);
    return backends.every((b) => seen.has(`${b.name}\n`));
  }, { timeout: 5000, interval: 5, what });
}

describe('balancing', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  const backends: TestBackend[] = [];

  async function backend(name: string, handler?: Parameters<typeof startBackend>[1]): Promise<TestBackend> {
    const b = await startBackend(name, handler);
    backends.push(b);
    return b;
  }

  before(async () => {
    etcd = await EtcdServer.start();
    // One worker: one round-robin cursor, so the counts below are exact.
    // --max-fails 1 and a long ejection make the ejection test deterministic;
    // no other test here makes a backend fail.
    router = await startRouter({ etcd: etcd.endpoint, workers: 1, args: ['--max-fails', '1', '--eject-time', '20s'] });
  });

  after(async () => {
    await router?.stop();
    await Promise.all(backends.map((b) => b.close()));
    await etcd?.close();
  });

  it('round-robin gives each of 3 backends exactly 100 of 300 requests with one worker', async () => {
    const rr = await Promise.all([backend('rr-a'), backend('rr-b'), backend('rr-c')]);
    for (const [i, b] of rr.entries()) await etcd.put(`/services/rr/@${i + 1}`, b.address);
    await waitRouted(router.httpPort, 'rr.test', rr, 'rr service routed to all three');
    forget(rr);

    const replies = await sequential(router.httpPort, 'rr.test', 300);
    assert.deepEqual(replies.map((r) => r.status).filter((s) => s !== 200), []);
    assert.deepEqual(counts(rr), [100, 100, 100]);
    // Strict rotation, not just equal totals: no backend twice in a row.
    for (let i = 1; i < replies.length; i++) assert.notEqual(replies[i].body, replies[i - 1].body, `request ${i} repeated a backend`);
  });

  it('round-robin stays within ±1 of an even split with two workers', async () => {
    const two = await startRouter({ etcd: etcd.endpoint, workers: 2 });
    try {
      const rr = await Promise.all([backend('rr2-a'), backend('rr2-b'), backend('rr2-c')]);
      for (const [i, b] of rr.entries()) await etcd.put(`/services/rr2/@${i + 1}`, b.address);
      // Both workers must have all three instances before counting (each
      // worker applies the change on its own): wait until all three answered,
      // then until a run of 30 requests, spread over both workers, all succeed.
      await waitRouted(two.httpPort, 'rr2.test', rr, 'rr2 service routed to all three');
      await waitFor(async () => (await sequential(two.httpPort, 'rr2.test', 30)).every((r) => r.status === 200), { what: 'rr2 stable on both workers' });
      forget(rr);

      const replies = await sequential(two.httpPort, 'rr2.test', 300);
      assert.deepEqual(replies.map((r) => r.status).filter((s) => s !== 200), []);
      // Each worker has its own cursor and the kernel's SO_REUSEPORT hash of
      // the connection's 4-tuple decides which worker gets a connection, so
      // the workers see n1 + n2 = 300 requests in an unknown split. Within a
      // worker, strict rotation gives every backend floor(n/3) or ceil(n/3),
      // i.e. less than 1 away from n/3; over two workers less than 2 away from
      // 100 in total, and an integer less than 2 away from 100 whose three
      // counts sum to 300 is 99, 100 or 101.
      const got = counts(rr);
      assert.equal(got.reduce((s, n) => s + n, 0), 300);
      for (const n of got) assert.ok(Math.abs(n - 100) <= 1, `split ${got.join('/')} is not within ±1 of 100 each`);
    } finally {
      await two.stop();
    }
  });

  it('weights 3:1 split 300 requests exactly 225/75, smoothly interleaved', async () => {
    const [heavy, light] = await Promise.all([backend('heavy'), backend('light')]);
    await etcd.put('/services/weighted/@1', JSON.stringify({ host: '127.0.0.1', port: heavy.port, weight: 3 }));
    await etcd.put('/services/weighted/@2', JSON.stringify({ host: '127.0.0.1', port: light.port, weight: 1 }));
    await waitRouted(router.httpPort, 'weighted.test', [heavy, light], 'weighted service routed to both');
    forget([heavy, light]);

    const replies = await sequential(router.httpPort, 'weighted.test', 300);
    assert.deepEqual(counts([heavy, light]), [225, 75]);
    // Smooth: the light backend never waits more than 3 heavy requests, and never gets two in a row.
    const order = replies.map((r) => (r.body === 'light\n' ? 'L' : 'h')).join('');
    assert.doesNotMatch(order, /hhhh|LL/, order);
  });

  it('least-connections sends new requests to the backend with fewer requests in flight', async () => {
    // Both backends start by holding every request; `release` answers the held ones and stops holding.
    const holding = new Map<string, ServerResponse[]>();
    const hold = (req: unknown, res: ServerResponse, b: TestBackend) => {
      const held = holding.get(b.name);
      if (held) held.push(res);
      else res.end(`${b.name}\n`);
    };
    const [slow, idle] = await Promise.all([backend('lc-slow', hold), backend('lc-idle', hold)]);
    const release = (b: TestBackend) => {
      const held = holding.get(b.name) ?? [];
      holding.delete(b.name);
      for (const res of held) res.end(`${b.name}\n`);
    };
    await etcd.put('/services/lc/@1', slow.address);
    await etcd.put('/services/lc/@2', idle.address);
    await etcd.put('/routes/lc', JSON.stringify({ hosts: ['lc.example'], service: 'lc', balance: 'least-connections' }));
    await waitRouted(router.httpPort, 'lc.example', [slow, idle], 'lc rule routed to both');
    forget([slow, idle]);
    holding.set(slow.name, []);
    holding.set(idle.name, []);

    const pending: Promise<Reply>[] = [];
    const answered: Reply[] = [];
    try {
      // 8 requests, each sent once the previous one reached a backend: the
      // one with fewer in flight gets the next, so 4 and 4.
      for (let i = 1; i <= 8; i++) {
        pending.push(get(router.httpPort, 'lc.example').then((r) => (answered.push(r), r)));
        await waitFor(() => slow.requests.length + idle.requests.length === i, { what: `request ${i} to reach a backend` });
      }
      assert.deepEqual(counts([slow, idle]), [4, 4]);

      // The idle backend answers its 4; the slow one keeps 4 in flight.
      release(idle);
      await waitFor(() => answered.length === 4, { what: 'the idle backend\'s 4 answers' });
      assert.ok(answered.every((r) => r.status === 200 && r.body === 'lc-idle\n'), 'the idle backend answered its requests');
      forget([idle]);

      // Bursts of 4 concurrent requests: at most 3 of them in flight on the
      // idle backend while the next is picked, against 4 on the slow one.
      for (let burst = 0; burst < 5; burst++) {
        const replies = await Promise.all(Array.from({ length: 4 }, () => get(router.httpPort, 'lc.example', '/', { timeout: 2000 })));
        assert.deepEqual(replies.map((r) => r.body), Array(4).fill('lc-idle\n'), `burst ${burst}`);
      }
      assert.equal(idle.requests.length, 20);
      assert.equal(slow.requests.length, 4, 'nothing new went to the backend with requests in flight');
    } finally {
      release(slow);
      release(idle);
    }
    await Promise.all(pending);
    assert.equal(answered.length, 8);
    assert.ok(answered.slice(4).every((r) => r.status === 200 && r.body === 'lc-slow\n'), 'the held requests complete once released');
  });

  it('adding an instance keeps another backend ejected and leaves other services\' rotation where it was', async () => {
    const [live, added] = await Promise.all([backend('upd-live'), backend('upd-added')]);
    const deadPort = await freePort(); // nothing listens here: connection refused
    const dead = `127.0.0.1:${deadPort}`;
    await etcd.put('/services/upd/@1', live.address);
    await etcd.put('/services/upd/@2', dead);
    // Requests until the dead one has been tried: refused, failed over, and (--max-fails 1) ejected for 20 s.
    await waitFor(async () => {
      await get(router.httpPort, 'upd.test');
      return router.logs().some((l) => l.msg === 'backend ejected' && l.backend === dead);
    }, { timeout: 5000, interval: 5, what: 'dead backend ejected' });

    // A second service, mid-rotation: remember where its cursor is.
    const rot = await Promise.all([backend('rot-a'), backend('rot-b'), backend('rot-c')]);
    for (const [i, b] of rot.entries()) await etcd.put(`/services/rot/@${i + 1}`, b.address);
    await waitRouted(router.httpPort, 'rot.test', rot, 'rot service routed');
    // Stop right after rot-a so that "restarted from the first" and "continued" differ.
    await waitFor(async () => (await get(router.httpPort, 'rot.test')).body === 'rot-a\n', { what: 'rot at rot-a' });

    const ejectionsOfDead = () => router.logs().filter((l) => l.msg === 'backend ejected' && l.backend === dead);
    const ejections = ejectionsOfDead().length;

    // The update: one more instance for `upd`. Every request from here on is tagged.
    await etcd.put('/services/upd/@3', added.address);
    const ids: string[] = [];
    const ask = () => {
      const id = `upd-${ids.length}`;
      ids.push(id);
      return get(router.httpPort, 'upd.test', '/', { headers: { 'x-request-id': id } });
    };
    await waitFor(async () => (await ask()).body === 'upd-added\n', { what: 'added instance routed' });
    const replies: Reply[] = [];
    for (let i = 0; i < 30; i++) replies.push(await ask());
    assert.ok(replies.every((r) => r.status === 200), 'every request served');
    assert.deepEqual([...new Set(replies.map((r) => r.body))].sort(), ['upd-added\n', 'upd-live\n'], 'both live backends share the load');
    // Had the update reset the dead backend's ejection, some request would have tried it again:
    // a failover (attempts 2) and, with --max-fails 1, another 'backend ejected' line.
    const tagged = new Set(ids);
    const lines = await waitFor(() => {
      const found = router.logs().filter((l) => l.component === 'access' && tagged.has(l.id as string));
      return found.length === ids.length ? found : null;
    }, { what: 'access log of the tagged requests' });
    assert.deepEqual(lines.filter((l) => l.attempts !== 1), [], 'no request tried the ejected backend');
    assert.equal(ejectionsOfDead().length, ejections);

    // The other service continues its rotation after rot-a.
    assert.deepEqual((await sequential(router.httpPort, 'rot.test', 3)).map((r) => r.body), ['rot-b\n', 'rot-c\n', 'rot-a\n']);
  });
});
