// Fuzzing of what the router makes of backend responses. A scripted backend
// (test/helpers/scripted-backend.ts) answers with responses bent in their
// framing, length, interim responses, bodiless statuses and heads
// (test/helpers/response-mutations.ts); each case is one client connection
// with two requests, pipelined or one after the other's response, read with a
// strict response reader (test/helpers/response-stream.ts).
//
// Invariant, per request: the client gets exactly one well-framed response
// whose status and body are what the backend meant, or an error status from the
// router (502/503/504), or a closed connection — never a response that runs into
// the next one: the second response is the backend's second answer, and bytes a
// backend sends beyond its response (a forged response, FORGED) never reach a
// client, on this connection or any later one. A response valid by RFC 9112 must
// be delivered. The router stays up throughout.
// Every case in fuzz-corpus/responses.json (found failing once) runs first.
// Bounds and replay: TUG_FUZZ_SECONDS, TUG_FUZZ_SEED, TUG_FUZZ_REPLAY (test/helpers/fuzz-run.ts);
// a replayed input is the JSON of a case, as printed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdServer } from '../helpers/etcd.ts';
import { sendRaw } from '../helpers/fuzz-client.ts';
import { fuzzSettings, Random, readCorpus, replayLine } from '../helpers/fuzz-run.ts';
import { get } from '../helpers/http.ts';
import { FORGED_MARK, generateResponse, type ScriptedResponse } from '../helpers/response-mutations.ts';
import { readResponses } from '../helpers/response-stream.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { ScriptedBackend } from '../helpers/scripted-backend.ts';
import { waitFor } from '../helpers/wait.ts';

const CORPUS = new URL('./fuzz-corpus/responses.json', import.meta.url);
const HOST = 'app.test';
/** Statuses of the router's own answer when a backend fails (the scripted backend never sends them). */
const ROUTER_ERRORS = new Set([502, 503, 504]);

interface ResponseCase {
  /** Both requests written at once, or the second after the first response. */
  readonly mode: 'pipelined' | 'sequential';
  readonly requests: readonly { readonly method: string; readonly response: ScriptedResponse }[];
}

function generateCase(rnd: Random, n: number): ResponseCase {
  const requests = [0, 1].map((i) => {
    const method = i === 0 && rnd.chance(0.2) ? 'HEAD' : 'GET';
    // The second answer is mostly plain, so that what goes wrong with it comes from the first.
    const response = i === 1 && rnd.chance(0.7) ? plain(method, `c${n}r2`) : generateResponse(rnd, method, `c${n}r${i + 1}`);
    return { method, response };
  });
  return { mode: rnd.chance(0.5) ? 'pipelined' : 'sequential', requests };
}

function plain(method: string, tag: string): ScriptedResponse {
  const body = `${tag}\n`;
  return { steps: [{ write: `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${method === 'HEAD' ? '' : body}` }], status: 200, bodies: [method === 'HEAD' ? '' : body], valid: true, shape: 'plain' };
}

describe('response fuzzing: the router forwards exactly one well-framed response per request, or an error, or closes', () => {
  const settings = fuzzSettings();
  let etcd: EtcdServer;
  let router: RouterProcess;
  let backend: ScriptedBackend;
  let counter = 0;
  const tally = { started: Date.now(), cases: 0, delivered: 0, errors: 0, closed: 0, lateForgeries: 0 };

  before(async () => {
    etcd = await EtcdServer.start();
    backend = await new ScriptedBackend().listen();
    await etcd.put('/services/app/@1', backend.address);
    router = await startRouter({ etcd: etcd.endpoint, workers: 1, args: ['--no-access-log', '--response-timeout', '2s', '--idle-timeout', '2s'] });
    await waitFor(async () => (await get(router.httpPort, HOST)).status === 200, { what: 'app routed' });
  });

  after(async () => {
    console.log(`response fuzz: ${tally.cases} cases in ${Math.round((Date.now() - tally.started) / 1000)} s; responses delivered ${tally.delivered}, router errors ${tally.errors}, cut off by a close ${tally.closed}; late bytes taken as the next answer (the reuse race) ${tally.lateForgeries}`);
    await router?.stop();
    await backend?.close();
    await etcd?.close();
  });

  /** Plays one case; the problems found (empty when the invariant held). */
  async function runCase(c: ResponseCase): Promise<string[]> {
    const id = ++counter;
    const targets = c.requests.map((_, i) => `/r/${id}/${i + 1}`);
    c.requests.forEach((r, i) => backend.script(targets[i], r.response.steps));
    const wire = c.requests.map((r, i) => Buffer.from(`${r.method} ${targets[i]} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, 'latin1'));
    const methodOf = (i: number) => c.requests[i]?.method ?? 'GET';
    const count = (received: Buffer) => readResponses(received, false, methodOf).responses.length;
    const reply = await sendRaw(router.httpPort, c.mode === 'pipelined' ? Buffer.concat(wire) : wire[0], {
      followUp: c.mode === 'sequential' ? { after: (received) => count(received) >= 1, bytes: wire[1] } : undefined,
      done: (received) => count(received) >= 2,
      activity: () => (backend.playing > 0 ? Date.now() : backend.lastActivity),
      quietMs: 150,
      timeoutMs: 6000,
    });
    // Whatever the scripts still had to send (bytes after a response, later) is sent before the next case.
    await waitFor(() => backend.playing === 0 && Date.now() - backend.lastActivity >= 5, { timeout: 3000, interval: 2 }).catch(() => {});
    for (const t of targets) backend.forget(t);

    const problems: string[] = [];
    const text = reply.bytes.toString('latin1');
    const lateForgery = c.requests[0].response.late === true;
    const forged = (body: string) => body === FORGED_MARK && lateForgery;
    if (text.includes(FORGED_MARK) && !lateForgery) problems.push(`bytes the backend sent after its response reached the client: ${JSON.stringify(text.slice(0, 600))}`);
    const stream = readResponses(reply.bytes, reply.closed, methodOf);
    const cutOff = stream.error !== null && stream.error.startsWith('connection closed inside');
    if (stream.error !== null && !cutOff) problems.push(`the client's bytes are not well-framed responses (${stream.error}): ${JSON.stringify(text.slice(0, 600))}`);
    let open = true;
    c.requests.forEach((r, i) => {
      const res = stream.responses[i];
      const meant = r.response;
      if (res === undefined) {
        tally.closed++;
        if (meant.valid && open) problems.push(`request #${i + 1}: a valid response (${meant.shape}) was not delivered (${reply.closed ? 'connection closed' : 'nothing came'})`);
        open = false;
        return;
      }
      const body = res.body.toString('latin1');
      if (ROUTER_ERRORS.has(res.status)) {
        tally.errors++;
        if (meant.valid && open) problems.push(`request #${i + 1}: the router answered ${res.status} to a valid response (${meant.shape})`);
      } else if (res.status === meant.status && meant.bodies.includes(body)) {
        tally.delivered++;
      } else if (i === 1 && forged(body)) {
        // The late bytes of the first answer came on the connection the second request was sent on.
        tally.lateForgeries++;
      } else {
        problems.push(`request #${i + 1}: got ${res.status} ${JSON.stringify(body.slice(0, 120))}, the backend meant ${meant.bodies.length === 0 ? 'no readable response (an error or a close)' : `${meant.status} ${JSON.stringify(meant.bodies[0].slice(0, 120))}`} (${meant.shape})`);
      }
      if (res.headers.some(([n, v]) => n === 'connection' && /close/i.test(v)) || !meant.valid) open = false;
    });
    if (problems.length > 0) problems.push(`the client got${reply.closed ? ' (then closed)' : ''}: ${JSON.stringify(text.slice(0, 800))}`);
    return problems;
  }

  /** Runs `c`; on failure, tries the first request alone (a plain second one) and reports the smaller case that fails. */
  async function check(label: string, c: ResponseCase, seed: number, shrink = true): Promise<string | null> {
    tally.cases++;
    let problems = await runCase(c);
    if (problems.length === 0) return null;
    let minimal = c;
    if (shrink) {
      const first: ResponseCase = { mode: c.mode, requests: [c.requests[0], { method: 'GET', response: plain('GET', 'second') }] };
      const again = await runCase(first);
      if (again.length > 0) {
        minimal = first;
        problems = again;
      }
    }
    return replayLine(label, seed, JSON.stringify(minimal), problems);
  }

  it('replays every case in the corpus of responses found failing before', { skip: settings.replay !== null }, async () => {
    const failures: string[] = [];
    for (const entry of readCorpus(CORPUS)) {
      const failure = await check(`corpus entry (${entry.found})`, JSON.parse(entry.input) as ResponseCase, settings.seed, false);
      if (failure !== null) failures.push(failure);
    }
    assert.deepEqual(failures, [], failures.join('\n\n'));
  });

  it(settings.replay !== null ? 'replays TUG_FUZZ_REPLAY' : `forwards one well-framed response per request for ${settings.seconds} s of generated backend answers`, async () => {
    const failures: string[] = [];
    if (settings.replay !== null) {
      const failure = await check('TUG_FUZZ_REPLAY', JSON.parse(settings.replay) as ResponseCase, settings.seed);
      if (failure !== null) failures.push(failure);
    } else {
      // One report per kind of problem is enough to act on.
      const seen = new Set<string>();
      const kind = (problems: string[]) => problems[0].replace(/"[^"]*"|\d+/g, '').slice(0, 120);
      for (const run of settings.runs) {
        const rnd = new Random(run.seed);
        const deadline = Date.now() + run.seconds * 1000;
        for (let n = 1; Date.now() < deadline && failures.length < 12 && router.child.exitCode === null; n++) {
          const c = generateCase(rnd, n);
          tally.cases++;
          const problems = await runCase(c);
          if (problems.length === 0 || seen.has(kind(problems))) continue;
          seen.add(kind(problems));
          const failure = await check(`generated case #${n}`, c, run.seed);
          if (failure !== null) failures.push(failure);
        }
      }
    }
    for (const f of failures) console.log(f);
    assert.deepEqual(failures, [], failures.join('\n\n'));
  });

  it('stays up through it all: the process lives, /healthz is 200, no worker died, a plain response is forwarded', async () => {
    assert.equal(router.child.exitCode, null, 'the router process is alive');
    assert.equal((await router.health()).status, 200);
    assert.equal(router.logs().filter((l) => l.msg === 'router worker died; restarting it').length, 0, 'no worker died');
    const errors = router.logs().filter((l) => typeof l.level === 'number' && l.level >= 50);
    assert.deepEqual(errors, [], 'nothing logged at error level or above');
    backend.script('/after-fuzzing', plain('GET', 'after').steps);
    const reply = await get(router.httpPort, HOST, '/after-fuzzing');
    assert.deepEqual([reply.status, reply.body], [200, 'after\n']);
  });
});
