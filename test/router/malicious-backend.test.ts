// A backend that lies about framing, answers twice, floods interim responses,
// switches protocols unasked, sends bytes after bodiless responses or drips its
// head: for each, what the client gets, that the next request (from another
// client) gets its own answer and never the leftover or forged bytes (issue 10,
// defects 2 and 8), and that the router stays healthy. Raw sockets on both
// sides (test/helpers/scripted-backend.ts, test/helpers/response-stream.ts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdServer } from '../helpers/etcd.ts';
import { sendRaw } from '../helpers/fuzz-client.ts';
import { get } from '../helpers/http.ts';
import { FORGED, FORGED_MARK } from '../helpers/response-mutations.ts';
import { header, readResponses, type ResponseStream } from '../helpers/response-stream.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { plainResponse, ScriptedBackend, type Step } from '../helpers/scripted-backend.ts';
import { waitFor } from '../helpers/wait.ts';

const HOST = 'app.test';
const RESPONSE_TIMEOUT_MS = 1000;

interface Exchange {
  readonly stream: ResponseStream;
  readonly text: string;
  readonly closed: boolean;
  readonly ms: number;
}

describe('malicious backends: the client gets one well-framed answer or an error, and the next request its own answer', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let backend: ScriptedBackend;
  let n = 0;

  before(async () => {
    etcd = await EtcdServer.start();
    backend = await new ScriptedBackend().listen();
    await etcd.put('/services/app/@1', backend.address);
    router = await startRouter({ etcd: etcd.endpoint, workers: 1, args: ['--response-timeout', `${RESPONSE_TIMEOUT_MS}ms`, '--idle-timeout', '2s'] });
    await waitFor(async () => (await get(router.httpPort, HOST)).status === 200, { what: 'app routed' });
  });

  after(async () => {
    await router?.stop();
    await backend?.close();
    await etcd?.close();
  });

  /** Requests `count` targets scripted with `scripts` on one client connection (pipelined), reads what comes back. */
  async function exchange(scripts: readonly (readonly Step[])[], method = 'GET', timeoutMs = 5000): Promise<Exchange> {
    const targets = scripts.map((steps) => {
      const target = `/m/${++n}`;
      backend.script(target, steps);
      return target;
    });
    const methodOf = () => method;
    const started = Date.now();
    const reply = await sendRaw(router.httpPort, Buffer.from(targets.map((t) => `${method} ${t} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`).join(''), 'latin1'), {
      done: (received) => readResponses(received, false, methodOf).responses.length >= targets.length,
      activity: () => (backend.playing > 0 ? Date.now() : backend.lastActivity),
      quietMs: 300,
      timeoutMs,
    });
    const ms = Date.now() - started;
    // Late bytes of the scripts are out (and have reached the router) before anything else happens.
    await waitFor(() => backend.playing === 0, { timeout: 5000, what: 'the scripts to finish' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const t of targets) backend.forget(t);
    return { stream: readResponses(reply.bytes, reply.closed, methodOf), text: reply.bytes.toString('latin1'), closed: reply.closed, ms };
  }

  /** A new client's plain request gets the backend's plain answer to it, nothing left over from before. */
  async function assertNextRequestServed(): Promise<void> {
    const body = `next ${++n}\n`;
    const { stream, text } = await exchange([[{ write: plainResponse(body) }]]);
    assert.equal(stream.error, null, `the next client's response is well framed: ${JSON.stringify(text)}`);
    assert.equal(stream.responses.length, 1, JSON.stringify(text));
    assert.deepEqual([stream.responses[0].status, stream.responses[0].body.toString('latin1')], [200, body], `the next client gets its own answer: ${JSON.stringify(text)}`);
  }

  function assertNoForgery(x: Exchange): void {
    assert.ok(!x.text.includes(FORGED_MARK), `bytes the backend sent after its response never reach a client: ${JSON.stringify(x.text)}`);
  }

  function only(x: Exchange, status: number, body: string): void {
    assert.equal(x.stream.error, null, `well framed: ${JSON.stringify(x.text)}`);
    assert.deepEqual(x.stream.responses.map((r) => [r.status, r.body.toString('latin1')]), [[status, body]], JSON.stringify(x.text));
  }

  /** A 502 (or a closed connection before any response): the answer to an unreadable response. */
  function badGatewayOrClosed(x: Exchange): void {
    assertNoForgery(x);
    if (x.stream.responses.length === 0) {
      assert.ok(x.closed, `no response, so the connection is closed: ${JSON.stringify(x.text)}`);
      return;
    }
    assert.equal(x.stream.responses[0].status, 502, JSON.stringify(x.text));
  }

  describe('double responses', () => {
    it('forwards only the first of two responses sent in one read, and the next request gets its own answer', async () => {
      const x = await exchange([[{ write: plainResponse('first\n') + FORGED }]]);
      only(x, 200, 'first\n');
      assertNoForgery(x);
      await assertNextRequestServed();
    });

    it('forwards only the first of two responses when the second comes 50 ms later, and the next request gets its own answer', async () => {
      const x = await exchange([[{ write: plainResponse('first\n') }, { pause: 50 }, { write: FORGED }]]);
      only(x, 200, 'first\n');
      await assertNextRequestServed();
    });
  });

  describe('framing', () => {
    it('forwards a response without framing until the backend closes: chunked by the router, or the client connection closed after it', async () => {
      const x = await exchange([[{ write: 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil close\n' }, { pause: 50 }, { end: true }]]);
      assert.equal(x.stream.error, null, JSON.stringify(x.text));
      assert.deepEqual(x.stream.responses.map((r) => [r.status, r.body.toString('latin1')]), [[200, 'until close\n']]);
      assert.ok(x.stream.responses[0].framed || x.closed, 'framed by the router, or ended by closing the client connection');
      await assertNextRequestServed();
    });

    it('answers 502 to two contradicting Content-Length headers', async () => {
      const x = await exchange([[{ write: 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 12\r\n\r\nfirst\nFORGED' }]]);
      badGatewayOrClosed(x);
      await assertNextRequestServed();
    });

    it('forwards a response with two equal Content-Length headers as one framed response, or answers 502', async () => {
      const x = await exchange([[{ write: 'HTTP/1.1 200 OK\r\ncontent-length: 6\r\ncontent-length: 6\r\n\r\nfirst\n' }]]);
      assert.equal(x.stream.error, null, JSON.stringify(x.text));
      const [res] = x.stream.responses;
      assert.ok(res.status === 502 || (res.status === 200 && res.body.toString('latin1') === 'first\n'), JSON.stringify(x.text));
      await assertNextRequestServed();
    });

    it('never forwards both Content-Length and Transfer-Encoding: the chunked reading, framed by the router, or 502', async () => {
      const x = await exchange([[{ write: 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n6\r\nfirst\n\r\n0\r\n\r\n' }]]);
      assert.equal(x.stream.error, null, `well framed (one of the two, not both): ${JSON.stringify(x.text)}`);
      const [res] = x.stream.responses;
      assert.ok(res.status === 502 || (res.status === 200 && res.body.toString('latin1') === 'first\n'), JSON.stringify(x.text));
      await assertNextRequestServed();
    });

    it('keeps the framing of a response whose Connection header names content-length, and the next response on that connection is the next answer (defect 2)', async () => {
      const x = await exchange([
        [{ write: 'HTTP/1.1 200 OK\r\nconnection: content-length\r\ncontent-length: 6\r\n\r\nfirst\n' }],
        [{ write: plainResponse('second\n') }],
      ]);
      assert.equal(x.stream.error, null, `well framed: ${JSON.stringify(x.text)}`);
      const first = x.stream.responses[0];
      assert.ok(header(first, 'content-length') === '6' || header(first, 'transfer-encoding') === 'chunked', `the first response is framed: ${JSON.stringify(x.text)}`);
      assert.deepEqual(x.stream.responses.map((r) => [r.status, r.body.toString('latin1')]), [[200, 'first\n'], [200, 'second\n']], JSON.stringify(x.text));
      await assertNextRequestServed();
    });

    it('keeps the framing of a chunked response whose Connection header names transfer-encoding (defect 2)', async () => {
      const x = await exchange([
        [{ write: 'HTTP/1.1 200 OK\r\nconnection: transfer-encoding\r\ntransfer-encoding: chunked\r\n\r\n6\r\nfirst\n\r\n0\r\n\r\n' }],
        [{ write: plainResponse('second\n') }],
      ]);
      assert.equal(x.stream.error, null, `well framed: ${JSON.stringify(x.text)}`);
      assert.deepEqual(x.stream.responses.map((r) => [r.status, r.body.toString('latin1')]), [[200, 'first\n'], [200, 'second\n']], JSON.stringify(x.text));
    });
  });

  describe('interim responses and protocol switches', () => {
    it('survives 1000 × 100 Continue before the response: the final response, or 502', async () => {
      const x = await exchange([[{ write: 'HTTP/1.1 100 Continue\r\n\r\n'.repeat(1000) + plainResponse('after the flood\n') }]]);
      assert.equal(x.stream.error, null, JSON.stringify(x.text.slice(0, 300)));
      const [res] = x.stream.responses;
      assert.ok(res.status === 502 || (res.status === 200 && res.body.toString('latin1') === 'after the flood\n'), JSON.stringify(x.text.slice(-300)));
      await assertNextRequestServed();
    });

    for (const interim of ['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 102 Processing\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n']) {
      it(`forwards the final response after an unsolicited ${interim.slice(9, 12)} (RFC 9110 §15.2: a client parses 1xx it did not expect)`, async () => {
        const x = await exchange([[{ write: interim + plainResponse('final\n') }], [{ write: plainResponse('second\n') }]]);
        assert.equal(x.stream.error, null, JSON.stringify(x.text));
        assert.deepEqual(x.stream.responses.map((r) => [r.status, r.body.toString('latin1')]), [[200, 'final\n'], [200, 'second\n']], JSON.stringify(x.text));
      });
    }

    it('answers 502 to an unsolicited 101 Switching Protocols and closes that upstream connection', async () => {
      const connections = backend.connections;
      const x = await exchange([[{ write: 'HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: tug\r\n\r\n' + plainResponse('tunnelled?\n') }]]);
      badGatewayOrClosed(x);
      assert.ok(!x.text.includes('101 Switching'), 'the 101 is not forwarded');
      await assertNextRequestServed();
      assert.ok(backend.connections > connections, 'the next request came on a new upstream connection');
    });
  });

  describe('bytes after a bodiless response (defect 8)', () => {
    for (const [name, status, method, head] of [
      ['204', 204, 'GET', 'HTTP/1.1 204 No Content\r\n\r\n'],
      ['304', 304, 'GET', 'HTTP/1.1 304 Not Modified\r\ncontent-length: 6\r\n\r\n'],
      ['a HEAD response', 200, 'HEAD', 'HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n'],
    ] as const) {
      it(`forwards ${name} without the bytes after it in the same read, and the next request gets its own answer`, async () => {
        const x = await exchange([[{ write: head + FORGED }]], method);
        only(x, status, '');
        assertNoForgery(x);
        await assertNextRequestServed();
      });

      it(`forwards ${name}, and bytes after it in a later read (50 ms) never reach the next request`, async () => {
        const x = await exchange([[{ write: head }, { pause: 50 }, { write: FORGED }]], method);
        only(x, status, '');
        await assertNextRequestServed();
      });
    }
  });

  describe('slow backends', () => {
    it('answers 504 when the head drips a byte every 100 ms past --response-timeout', async () => {
      const head = plainResponse('dripped\n');
      const steps: Step[] = [];
      for (const c of head.slice(0, 40)) steps.push({ write: c }, { pause: 100 });
      const x = await exchange([steps], 'GET', 8000);
      assert.equal(x.stream.error, null, JSON.stringify(x.text));
      assert.equal(x.stream.responses[0]?.status, 504, JSON.stringify(x.text));
      assert.ok(x.ms < RESPONSE_TIMEOUT_MS * 3, `504 after ${x.ms} ms, within a few times --response-timeout`);
      await assertNextRequestServed();
    });
  });

  it('stays healthy after the whole battery: the process lives, /healthz is 200, no worker died', async () => {
    assert.equal(router.child.exitCode, null);
    assert.equal((await router.health()).status, 200);
    assert.equal(router.logs().filter((l) => l.msg === 'router worker died; restarting it').length, 0);
    await assertNextRequestServed();
  });
});
