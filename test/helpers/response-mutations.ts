// Backend answers for the response fuzzer: a response built from parts and
// bent in its framing (Content-Length, chunked, both, duplicates, lists,
// `Connection: content-length`, none), its length (body longer or shorter than
// declared, extra bytes now or later), interim responses before it, bodiless
// statuses and HEAD with bytes after them, bad chunks and bad heads. Each comes
// with what the client may see: the body the backend meant (one reading, or
// none when the response is unreadable), and whether it is valid enough that
// the router must deliver it. Bytes the backend sends beyond its response are a
// forged response: if FORGED ever reaches a client, a response ran into the next.
import type { Random } from './fuzz-run.ts';
import type { Step } from './scripted-backend.ts';

export const FORGED_MARK = 'FORGED';
export const FORGED = `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${FORGED_MARK.length}\r\n\r\n${FORGED_MARK}`;

export interface ScriptedResponse {
  readonly steps: Step[];
  readonly status: number;
  /** Bodies the client may get with `status`; empty: only an error status or a closed connection is right. */
  readonly bodies: string[];
  /** RFC 9112-valid: the router must deliver it (not 502, not a closed connection). */
  readonly valid: boolean;
  /** The mutations applied, for the report. */
  readonly shape: string;
  /**
   * Bytes follow the response in a later read: if the router has already sent the next request on
   * that connection, they are, as far as any proxy can tell, the answer to it (HTTP/1.1 has no way
   * to tell them apart). The fuzzer accepts FORGED as the next answer then; the malicious-backend
   * battery checks that bytes arriving on an idle connection kill it.
   */
  readonly late?: true;
}

const hex = (n: number) => n.toString(16);

function chunked(rnd: Random, body: string): string {
  let out = '';
  let rest = body;
  while (rest.length > 0) {
    const n = 1 + rnd.int(rest.length);
    const ext = rnd.chance(0.1) ? ';a=b' : '';
    out += `${rnd.chance(0.2) ? hex(n).toUpperCase() : hex(n)}${ext}\r\n${rest.slice(0, n)}\r\n`;
    rest = rest.slice(n);
  }
  return `${out}0\r\n${rnd.chance(0.2) ? 'x-trailer: t\r\n' : ''}\r\n`;
}

/** A response to a request with `method`; `tag` makes its body unique. */
export function generateResponse(rnd: Random, method: string, tag: string): ScriptedResponse {
  const body = `${tag} ${'x'.repeat(rnd.pick([0, 5, 100, 400]))}\n`;
  const head = (status: string, fields: string) => `HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\n${fields}\r\n`;
  const interim = rnd.chance(0.15) ? Array.from({ length: 1 + rnd.int(4) }, () => rnd.pick(['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 102 Processing\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n'])).join('') : '';
  const ok = (fields: string, payload: string, bodies = [body], valid = true, shape = 'valid'): ScriptedResponse => ({
    steps: [{ write: interim + head('200 OK', fields) + (method === 'HEAD' ? '' : payload) }],
    status: 200,
    bodies: method === 'HEAD' ? [''] : bodies,
    valid,
    shape: interim === '' ? shape : `${interim.split('\r\n\r\n').length - 1} interim, ${shape}`,
  });
  const n = body.length;
  switch (rnd.int(20)) {
    case 0: return ok(`content-length: ${n}\r\n`, body, [body], true, 'Content-Length');
    case 1: return ok('transfer-encoding: chunked\r\n', chunked(rnd, body), [body], true, 'chunked');
    case 2: {
      if (method === 'HEAD') return ok(`content-length: ${n}\r\n`, '', [''], true, 'HEAD with Content-Length');
      return { steps: [{ write: interim + head('200 OK', 'connection: close\r\n') + body }, { end: true }], status: 200, bodies: [body], valid: true, shape: 'no framing, Connection: close, then FIN' };
    }
    case 3: {
      if (method === 'HEAD') return ok('', '', [''], true, 'HEAD without framing');
      return { steps: [{ write: interim + head('200 OK', '') + body }, { pause: 20 }, { end: true }], status: 200, bodies: [body], valid: true, shape: 'no framing on a keep-alive connection, FIN later' };
    }
    case 4: {
      const fields = rnd.chance(0.5) ? `content-length: ${rnd.pick([n, 3, 0, n + 10])}\r\ntransfer-encoding: chunked\r\n` : `transfer-encoding: chunked\r\ncontent-length: ${rnd.pick([n, 3, 0])}\r\n`;
      // RFC 9112 §6.3: Transfer-Encoding wins; a proxy may also refuse.
      return ok(fields, chunked(rnd, body), [body], false, 'Content-Length and Transfer-Encoding, chunked body');
    }
    case 5: return ok(`content-length: ${n}\r\ncontent-length: ${n}\r\n`, body, [body], false, 'two equal Content-Length');
    case 6: return ok(`content-length: ${n}\r\ncontent-length: ${n + rnd.pick([1, -1, 100])}\r\n`, body + 'x'.repeat(100), [], false, 'two different Content-Length');
    case 7: return ok(`content-length: ${rnd.pick([`${n}, ${n}`, `+${n}`, `${n} ${n}`, `0x${hex(n)}`, `-${n}`, `${n}.0`, ''])}\r\n`, body, [body], false, 'odd Content-Length value');
    case 8: return ok(`connection: content-length\r\ncontent-length: ${n}\r\n`, body, [body], false, 'Connection: content-length');
    case 9: return ok(`connection: ${rnd.pick(['transfer-encoding', 'close, transfer-encoding', 'keep-alive, Transfer-Encoding'])}\r\ntransfer-encoding: chunked\r\n`, chunked(rnd, body), [body], false, 'Connection: transfer-encoding');
    case 10: {
      const later = rnd.chance(0.5);
      const r = ok(`content-length: ${n}\r\n`, later ? body : body + FORGED, [body], false, `body longer than Content-Length, extra ${later ? 'in a later read' : 'in the same read'}`);
      if (later) r.steps.push({ pause: 30 }, { write: FORGED });
      return later ? { ...r, late: true } : r;
    }
    case 11: {
      const r = ok(`content-length: ${n + 10}\r\n`, body, [], false, 'body shorter than Content-Length, then FIN');
      r.steps.push({ end: true });
      return r;
    }
    case 12: {
      const status = rnd.pick(['204 No Content', '304 Not Modified']);
      const fields = status.startsWith('304') && rnd.chance(0.5) ? `content-length: ${n}\r\n` : '';
      const later = rnd.chance(0.5);
      const steps: Step[] = [{ write: interim + head(status, fields) + (later ? '' : FORGED) }];
      if (later) steps.push({ pause: 30 }, { write: FORGED });
      return { steps, status: Number(status.slice(0, 3)), bodies: [''], valid: false, shape: `${status} with a response after it ${later ? 'in a later read' : 'in the same read'}`, ...(later ? { late: true as const } : {}) };
    }
    case 13: {
      if (method !== 'HEAD') return ok(`content-length: ${n}\r\n`, body, [body], true, 'Content-Length');
      // A HEAD response followed by the body a GET would get, now or later.
      const later = rnd.chance(0.5);
      const steps: Step[] = [{ write: head('200 OK', `content-length: ${n}\r\n`) + (later ? '' : FORGED) }];
      if (later) steps.push({ pause: 30 }, { write: FORGED });
      return { steps, status: 200, bodies: [''], valid: false, shape: `HEAD response with bytes after it ${later ? 'in a later read' : 'in the same read'}`, ...(later ? { late: true as const } : {}) };
    }
    case 14: {
      const bad = rnd.pick(['zz\r\n', '-1\r\n', 'fffffffffffffffffff\r\n', `${hex(n)} \r\n`, `${hex(n + 5)}\r\n`, `0x${hex(n)}\r\n`, `${hex(n)};a=\x01\r\n`]);
      const r = ok('transfer-encoding: chunked\r\n', `${bad}${body}\r\n0\r\n\r\n${FORGED}`, [], false, `bad chunk size line ${JSON.stringify(bad)}`);
      r.steps.push({ end: true });
      return r;
    }
    case 15: {
      const field = rnd.pick(['x-folded: a\r\n b\r\n', 'x-bare-lf: a\nx-b: c\r\n', 'x-nul: a\x00b\r\n', 'x-space : a\r\n', ' x-leading: a\r\n', 'x-cr: a\rb\r\n', 'no colon\r\n']);
      return ok(`${field}content-length: ${n}\r\n`, body, [body], false, `bad field ${JSON.stringify(field)}`);
    }
    case 16: {
      const line = rnd.pick(['HTTP/1.1 200', 'HTTP/1.0 200 OK', 'HTTP/1.1 2000 OK', 'HTTP/2 200 OK', 'HTTP/1.1 20 OK', 'http/1.1 200 OK', 'HTTP/1.1 200 OK\x00']);
      const valid = line === 'HTTP/1.1 200' || line === 'HTTP/1.0 200 OK';
      // A bad reason phrase leaves status and framing readable: the router writes its own status line.
      const readable = valid || line.endsWith('\x00');
      return { steps: [{ write: `${line}\r\ncontent-length: ${n}\r\n\r\n${method === 'HEAD' ? '' : body}` }], status: 200, bodies: !readable ? [] : method === 'HEAD' ? [''] : [body], valid, shape: `status line ${JSON.stringify(line)}` };
    }
    case 17: {
      const coding = rnd.pick(['identity', 'xchunked', 'gzip', 'chunked, identity']);
      const r = ok(`transfer-encoding: ${coding}\r\n`, body, [body], false, `Transfer-Encoding: ${coding}, body until FIN`);
      r.steps.push({ end: true });
      return r;
    }
    case 18: return {
      steps: [{ write: 'HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: tug\r\n\r\n' + head('200 OK', `content-length: ${n}\r\n`) + (method === 'HEAD' ? '' : body) }],
      status: 200, bodies: [], valid: false, shape: 'an unsolicited 101 before the response',
    };
    default: return ok(`content-length: ${n}\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n`, chunked(rnd, body), [body], false, 'Transfer-Encoding twice');
  }
}
