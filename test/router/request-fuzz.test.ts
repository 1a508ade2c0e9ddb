// Differential fuzzing of the router's HTTP/1.1 request parsing and of the
// framing of what it forwards. Each case sends one connection's worth of bytes
// (valid requests bent by smuggling shapes, whitespace, case, line endings,
// control bytes, sizes, pipelining: test/helpers/request-mutations.ts) to the
// real router, whose only backend records every byte it receives and parses
// them with llhttp in strict mode. The same bytes go to llhttp's strict server
// (node:http with insecureHTTPParser off, requireHostHeader on) as the oracle.
//
// Checks, per case:
//   (a) every request the router forwards is one the oracle accepted, whole;
//   (b) the backend's bytes parse as exactly one request per forwarded client
//       request — same method, same target (path compared after dot-segment
//       removal: sameTargetAfterNormalisation), same body, framing present and
//       right, Host once — and nothing else: no second request smuggled in, no
//       parse error, no leftover bytes; the client's responses are well framed
//       and each is the backend's answer to its own request;
//   (c) the router stays up, /healthz stays 200 and a valid request is served
//       after the run.
// "Router accepts ⇒ oracle accepts", not equivalence: the router refuses on
// purpose some things llhttp takes (known differences, never failures):
//   - transfer codings other than a lone `chunked` (501), Transfer-Encoding in
//     HTTP/1.0 (400);
//   - CONNECT (400), versions other than 1.0 and 1.1 (HTTP/0.9, HTTP/2.0: 400/505);
//   - a repeated Host, a Host that is not host[:port] (400);
//   - absolute-form targets with schemes other than http(s), or userinfo (400);
//   - Content-Length with more than 15 digits (400).
// And one place where llhttp is stricter than RFC 9110, allowed here: a tab
// after `chunked` in Transfer-Encoding is OWS (§5.6.3) but llhttp refuses it
// (HPE_INVALID_TRANSFER_ENCODING) while it takes a space; the router writes
// its own Transfer-Encoding upstream, so no backend sees the tab
// (oracleWithOwsTabs).
// Every input in fuzz-corpus/requests.json (found failing once) runs first.
// Bounds and replay: TUG_FUZZ_SECONDS, TUG_FUZZ_SEED, TUG_FUZZ_REPLAY (test/helpers/fuzz-run.ts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CapturingBackend, CAPTURE_HEADER, type CapturedRequest } from '../helpers/capturing-backend.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { sendRaw } from '../helpers/fuzz-client.ts';
import { fuzzSettings, minimise, Random, readCorpus, replayLine } from '../helpers/fuzz-run.ts';
import { get } from '../helpers/http.ts';
import { FUZZ_HOST, generateConnectionInput, SMUGGLED_PATH } from '../helpers/request-mutations.ts';
import { header, readResponses } from '../helpers/response-stream.ts';
import { parseRequestsStrictly, type StrictParse, type StrictRequest } from '../helpers/strict-request-parser.ts';
import { sameTargetAfterNormalisation, targetAuthority } from '../helpers/target-comparison.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';

const CORPUS = new URL('./fuzz-corpus/requests.json', import.meta.url);
/** Statuses the router answers with itself (refusals, no route, redirects, upstream errors). */
const ROUTER_STATUSES = new Set([308, 400, 404, 408, 413, 414, 431, 501, 502, 503, 504, 505]);

interface Problem {
  /** Which check failed; minimisation keeps an input only while the same check fails. */
  readonly check: string;
  readonly detail: string;
}

interface CaseResult {
  readonly problems: Problem[];
  /** The router forwarded at least one request of the input / refused it with this status. */
  readonly forwarded: number;
  readonly routerStatuses: number[];
  readonly oracle: StrictParse;
}

/** Values of `name` in a flat raw header list. */
function values(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name) out.push(raw[i + 1]);
  return out;
}

/** Lowercase, without port or trailing dot: how two Host values are compared. */
function hostKey(host: string): string {
  return host.toLowerCase().replace(/:\d*$/, '').replace(/\.$/, '');
}

/** (b) for one forwarded request: what the backend received against what the client sent. */
function compareForwarded(sent: StrictRequest, received: CapturedRequest, index: number): Problem[] {
  const problems: Problem[] = [];
  const at = `request #${index + 1}`;
  if (received.method !== sent.method) problems.push({ check: 'b:method', detail: `${at}: the client sent ${sent.method}, the backend got ${received.method}` });
  if (!sameTargetAfterNormalisation(sent.url, received.url)) problems.push({ check: 'b:target', detail: `${at}: the client sent ${JSON.stringify(sent.url)}, the backend got ${JSON.stringify(received.url)}` });
  if (!received.body.equals(sent.body)) problems.push({ check: 'b:body', detail: `${at}: the client sent a ${sent.body.length}-byte body ${JSON.stringify(sent.body.toString('latin1').slice(0, 80))}, the backend got ${received.body.length} bytes ${JSON.stringify(received.body.toString('latin1').slice(0, 80))}` });
  const hosts = values(received.rawHeaders, 'host');
  if (hosts.length !== 1) problems.push({ check: 'b:host', detail: `${at}: the backend got ${hosts.length} Host headers` });
  else {
    const expected = targetAuthority(sent.url) ?? values(sent.rawHeaders, 'host')[0] ?? '';
    if (hostKey(hosts[0]) !== hostKey(expected)) problems.push({ check: 'b:host', detail: `${at}: the backend got Host ${JSON.stringify(hosts[0])}, the request was for ${JSON.stringify(expected)}` });
  }
  const lengths = values(received.rawHeaders, 'content-length');
  const codings = values(received.rawHeaders, 'transfer-encoding');
  if (lengths.length + codings.length > 1) problems.push({ check: 'b:framing', detail: `${at}: the backend got Content-Length ${JSON.stringify(lengths)} and Transfer-Encoding ${JSON.stringify(codings)}` });
  else if (received.body.length > 0 && lengths.length + codings.length === 0) problems.push({ check: 'b:framing', detail: `${at}: a body without framing at the backend` });
  else if (lengths.length === 1 && Number(lengths[0]) !== received.body.length) problems.push({ check: 'b:framing', detail: `${at}: Content-Length ${lengths[0]} at the backend for ${received.body.length} bytes` });
  else if (codings.length === 1 && codings[0].toLowerCase() !== 'chunked') problems.push({ check: 'b:framing', detail: `${at}: Transfer-Encoding ${codings[0]} at the backend` });
  if (received.url.startsWith(SMUGGLED_PATH) && !sent.url.startsWith(SMUGGLED_PATH)) problems.push({ check: 'b:smuggled', detail: `${at}: ${SMUGGLED_PATH} reached the backend in place of ${sent.url}` });
  return problems;
}

/** Trailing whitespace after a Transfer-Encoding value, tabs included (RFC 9110 OWS). */
const TE_TRAILING_OWS = /^(transfer-encoding:[^\r\n]*?[^ \t\r\n])([ \t]*\t[ \t]*)\r\n/gim;

/**
 * The oracle's verdict, except that a tab in the OWS after a Transfer-Encoding value is read as the
 * space llhttp accepts there (the one known place where llhttp is stricter than RFC 9110).
 */
async function oracleWithOwsTabs(input: string): Promise<StrictParse> {
  const verdict = await parseRequestsStrictly(Buffer.from(input, 'latin1'));
  if (verdict.error !== 'HPE_INVALID_TRANSFER_ENCODING' || !TE_TRAILING_OWS.test(input)) return verdict;
  TE_TRAILING_OWS.lastIndex = 0;
  return parseRequestsStrictly(Buffer.from(input.replace(TE_TRAILING_OWS, (_, value: string, ows: string) => `${value}${' '.repeat(ows.length)}\r\n`), 'latin1'));
}

describe('request fuzzing: the router forwards exactly what a strict parser accepts, framed as it was accepted', () => {
  const settings = fuzzSettings();
  let etcd: EtcdServer;
  let router: RouterProcess;
  let backend: CapturingBackend;
  /** Time left for minimising failing inputs, ms, over the whole file. */
  let minimiseBudget = 20_000;
  const tally = { started: Date.now(), cases: 0, forwarded: 0, refusedByBoth: 0, refusedByRouterOnly: new Map<number, number>() };

  before(async () => {
    etcd = await EtcdServer.start();
    backend = await new CapturingBackend().listen();
    await etcd.put('/services/app/@1', backend.address);
    router = await startRouter({ etcd: etcd.endpoint, workers: 1, args: ['--no-access-log'] });
    await waitFor(async () => (await get(router.httpPort, FUZZ_HOST)).status === 200, { what: 'app routed' });
  });

  after(async () => {
    console.log(`request fuzz: ${tally.cases} cases in ${Math.round((Date.now() - tally.started) / 1000)} s, ${tally.forwarded} forwarded, ${tally.refusedByBoth} refused by both, refused by the router only (llhttp accepts): ${JSON.stringify(Object.fromEntries(tally.refusedByRouterOnly))}`);
    await router?.stop();
    await backend?.close();
    await etcd?.close();
  });

  /** Runs one input through the router and checks (a) and (b). */
  async function runCase(input: string, cuts: readonly number[] = []): Promise<CaseResult> {
    const bytes = Buffer.from(input, 'latin1');
    const oracle = await oracleWithOwsTabs(input);
    const accepted = oracle.requests.filter((r) => r.complete).length;
    const firstRequest = backend.requestCount;
    /** A backend response's request is known by its marker; the router's own by the oracle's reading. */
    const methodOf = (i: number, headers: readonly (readonly [string, string])[] = []) => {
      const marker = headers.find(([n]) => n === CAPTURE_HEADER)?.[1];
      if (marker !== undefined) return backend.request(Number(marker))?.method ?? 'GET';
      return oracle.requests[i]?.method ?? 'GET';
    };
    const firstError = backend.parseErrors.length;
    const reply = await sendRaw(router.httpPort, bytes, {
      cuts,
      activity: () => backend.lastActivity,
      quietMs: 50,
      done: (received) => oracle.error === null && accepted === oracle.requests.length && readResponses(received, false, methodOf).responses.length >= accepted,
    });
    // Let the backend finish with whatever reached it (a smuggled request is answered by now).
    await waitFor(() => Date.now() - backend.lastActivity >= 5, { timeout: 1000, interval: 2 }).catch(() => {});
    const captured = backend.requestsAfter(firstRequest);
    const problems: Problem[] = [];
    const stream = readResponses(reply.bytes, reply.closed, methodOf);
    if (stream.error !== null && !(stream.error.startsWith('incomplete') && !reply.closed)) {
      problems.push({ check: 'b:response-stream', detail: `the client's bytes are not well-framed responses: ${stream.error}` });
    }
    const claimed = new Set<number>();
    const routerStatuses: number[] = [];
    stream.responses.forEach((res, j) => {
      const marker = header(res, CAPTURE_HEADER);
      if (marker === undefined) {
        routerStatuses.push(res.status);
        if (!ROUTER_STATUSES.has(res.status)) problems.push({ check: 'b:response', detail: `response #${j + 1}: status ${res.status} that is neither the backend's nor one the router makes` });
        return;
      }
      const id = Number(marker);
      const received = captured.find((r) => r.id === id);
      if (received === undefined || claimed.has(id)) {
        problems.push({ check: 'b:response', detail: `response #${j + 1} answers backend request ${id}, not one of this case's (${captured.map((r) => r.id)})` });
        return;
      }
      claimed.add(id);
      const expectedBody = received.method === 'HEAD' ? '' : `ok ${id}\n`;
      if (res.status !== 200 || res.body.toString('latin1') !== expectedBody) problems.push({ check: 'b:response', detail: `response #${j + 1}: ${res.status} ${JSON.stringify(res.body.toString('latin1').slice(0, 80))}, the backend sent 200 ${JSON.stringify(expectedBody)}` });
      const sent = oracle.requests[j];
      if (sent === undefined || !sent.complete) {
        problems.push({ check: 'a:accepts-only-what-llhttp-accepts', detail: `request #${j + 1} was forwarded (${received.method} ${received.url}), llhttp strict refuses it: ${oracle.error ?? 'incomplete'}` });
        return;
      }
      problems.push(...compareForwarded(sent, received, j));
    });
    for (const r of captured) {
      if (r.complete && !claimed.has(r.id)) problems.push({ check: 'b:one-request-per-request', detail: `the backend parsed a request no client response answers: ${r.method} ${JSON.stringify(r.url)} (${r.body.length}-byte body)` });
    }
    // A request cut off at the end of a connection (HPE_INVALID_EOF_STATE) is checked as cut off below.
    for (const e of backend.parseErrors.slice(firstError).filter((e) => e.code !== 'HPE_INVALID_EOF_STATE')) problems.push({ check: 'b:backend-parse', detail: `the backend's strict parser refused what the router forwarded (${e.code}): ${JSON.stringify(e.bytes.toString('latin1').slice(-300))}` });
    // A request cut off mid-body (the router found its body bad, or the client left) must not stay half-sent.
    const open = captured.filter((r) => !r.complete);
    if (open.length > 0) {
      const connections = open.map((r) => backend.connections[r.connection - 1]);
      await waitFor(() => connections.every((c) => c.closed), { timeout: 2000, what: 'the router to close upstream connections carrying a cut-off request' })
        .catch(() => problems.push({ check: 'b:cut-off-request-left-open', detail: `a cut-off request stayed open on an upstream connection: ${open.map((r) => `${r.method} ${r.url}`)}` }));
    }
    if (problems.length > 0) problems.push({ check: 'note', detail: `the client got${reply.closed ? ' (then closed)' : ''}: ${JSON.stringify(reply.bytes.toString('latin1').slice(0, 600))}` });
    return { problems, forwarded: claimed.size, routerStatuses, oracle };
  }

  function count(result: CaseResult): void {
    tally.cases++;
    tally.forwarded += result.forwarded;
    if (result.forwarded > 0) return;
    if (!(result.oracle.requests[0]?.complete ?? false)) tally.refusedByBoth++;
    else for (const status of result.routerStatuses.slice(0, 1)) tally.refusedByRouterOnly.set(status, (tally.refusedByRouterOnly.get(status) ?? 0) + 1);
  }

  /** Runs `input`; on failure, shrinks it (keeping the same failed check) and returns the report. */
  async function check(label: string, input: string, seed: number, cuts: readonly number[] = [], shrink = true): Promise<string | null> {
    const result = await runCase(input, cuts);
    count(result);
    if (result.problems.length === 0) return null;
    const kind = result.problems[0].check;
    let minimal = input;
    let problems = result.problems;
    const whole = cuts.length === 0 || !shrink ? result : await runCase(input);
    if (!shrink) {
      // Corpus entries are short already, and many may fail at once before a fix lands.
    } else if (whole.problems.some((p) => p.check === kind)) {
      // Bounded in all (the file runs under node --test's 120 s per test), 5 s per input at most.
      const budget = Math.min(5000, minimiseBudget);
      const started = Date.now();
      minimal = await minimise(input, async (candidate) => (await runCase(candidate)).problems.some((p) => p.check === kind), budget);
      minimiseBudget -= Date.now() - started;
      problems = (await runCase(minimal)).problems;
      if (!problems.some((p) => p.check === kind)) problems = result.problems;
    } else {
      problems = [...problems, { check: 'note', detail: `fails only when written in pieces cut at ${JSON.stringify(cuts)}` }];
    }
    return replayLine(label, seed, minimal, problems.map((p) => `${p.check}: ${p.detail}`));
  }

  it('replays every request in the corpus of inputs found failing before', { skip: settings.replay !== null }, async () => {
    const failures: string[] = [];
    for (const entry of readCorpus(CORPUS)) {
      const failure = await check(`corpus entry (${entry.found})`, entry.input, settings.seed, [], false);
      if (failure !== null) failures.push(failure);
    }
    assert.deepEqual(failures, [], failures.join('\n\n'));
  });

  it(settings.replay !== null ? 'replays TUG_FUZZ_REPLAY' : `forwards only what llhttp accepts, as exactly one request each, for ${settings.seconds} s of generated input`, async () => {
    const failures: string[] = [];
    if (settings.replay !== null) {
      const failure = await check('TUG_FUZZ_REPLAY', settings.replay, settings.seed);
      if (failure !== null) failures.push(failure);
    } else {
      // Distinct failures by check: one minimised input each is enough to act on.
      const seen = new Set<string>();
      for (const run of settings.runs) {
        const rnd = new Random(run.seed);
        const deadline = Date.now() + run.seconds * 1000;
        while (Date.now() < deadline && failures.length < 10) {
          const input = generateConnectionInput(rnd);
          const cuts = rnd.chance(0.2) ? [1 + rnd.int(Math.max(1, input.length - 1))] : [];
          const probe = await runCase(input, cuts);
          count(probe);
          if (probe.problems.length === 0 || seen.has(probe.problems[0].check)) continue;
          seen.add(probe.problems[0].check);
          const failure = await check(`generated input #${tally.cases}`, input, run.seed, cuts);
          if (failure !== null) failures.push(failure);
          if (router.child.exitCode !== null) break;
        }
      }
    }
    for (const f of failures) console.log(f);
    assert.deepEqual(failures, [], failures.join('\n\n'));
  });

  it('stays up through it all: the process lives, /healthz is 200, no worker died, a valid request is served', async () => {
    assert.equal(router.child.exitCode, null, 'the router process is alive');
    assert.equal((await router.health()).status, 200);
    assert.equal(router.logs().filter((l) => l.msg === 'router worker died; restarting it').length, 0, 'no worker died');
    const errors = router.logs().filter((l) => typeof l.level === 'number' && l.level >= 50);
    assert.deepEqual(errors, [], 'nothing logged at error level or above');
    const before = backend.requestCount;
    const reply = await get(router.httpPort, FUZZ_HOST, '/after-fuzzing', { method: 'POST', body: 'last' });
    assert.equal(reply.status, 200);
    const [received] = backend.requestsAfter(before);
    assert.equal(reply.headers[CAPTURE_HEADER], String(received.id));
    assert.deepEqual([received.method, received.url, received.body.toString()], ['POST', '/after-fuzzing', 'last']);
  });
});
