// The registry dashboard's script (an ES module): polls dashboard.json every
// 2 s and renders it with the shared DOM helpers
// (common/dashboard/assets/dashboard-dom.js), which set text only: nothing the
// registry reports (a directory, a token realm, an error) can become markup or script.
import { badge, bytes, card, clock, duration, el, fill, latency, num, pollMain, row, rps, share } from './dashboard-dom.js';

const EVERY = 2000;
const $ = (id) => document.getElementById(id);
const perSecond = (value) => (value === null ? '—' : `${bytes(value)}/s`);
const count = (value) => value.toLocaleString('en');

function render(data) {
  const r = data.registry;
  const c = data.config;
  $('node').textContent = `${c.container} · ${r.version}`;
  document.title = `Tug registry ${c.container}`;
  const state = r.status === 'serving' ? badge('ok', 'serving') : badge('warn', r.status);
  const container = r.container === 'ready' ? badge('ok', 'container ready') : badge('bad', `container ${r.container}`);
  $('summary').replaceChildren(state, ' ', container, ` up ${duration(r.uptimeSeconds)} · listen ${c.listen} · admin ${r.admin} · updated ${clock(data.generatedAt)}`);

  const t = data.traffic;
  const auth = c.auth;
  const cards = [
    card('health', [
      ['status', state.cloneNode(true)],
      ['container', container.cloneNode(true)],
      ['probe', r.ready ? '/healthz answers 200' : '/healthz answers 503'],
    ]),
    card('storage', [
      ['container', c.container],
      ['root directory', c.rootDirectory === '' ? '(the container\'s root)' : c.rootDirectory],
      ['blob names', c.blobNaming],
      ['upload spool', c.uploadDir],
      ['uploads expire', duration(c.uploadExpirySeconds)],
      ['blocks', `${bytes(c.blockSize)} × ${c.blockConcurrency} in parallel`],
      ['blob reads', c.blobRedirect ? 'redirected to Azure (307) unless the node cache holds them' : 'served by the registry'],
    ]),
    card('mode', c.mirror === null
      ? [['serves', 'its own images (push and pull)'], ['largest manifest', bytes(c.maxManifestSize)]]
      : [
          ['serves', 'a read-only mirror'],
          ['upstream', c.mirror.remote],
          ['tags re-checked', `after ${duration(c.mirror.ttlSeconds)}`],
          ['upstream login', c.mirror.upstreamCredentials ? 'yes' : 'anonymous'],
        ]),
    card('auth', [
      ['mode', auth.mode === 'none' ? 'none (anyone who reaches it)' : auth.mode],
      ...(auth.htpasswd !== null ? [['htpasswd', auth.htpasswd]] : []),
      ...(auth.acl !== null ? [['ACL', auth.acl]] : []),
      ...(auth.token !== null ? [['realm', auth.token.realm], ['service', auth.token.service], ['issuer', auth.token.issuer]] : []),
    ]),
    card('traffic', [
      ['requests/s', rps(t.rps)],
      ['5xx share', share(t.errorShare)],
      ['in', `${perSecond(t.bytesInPerSecond)} (${bytes(t.bytesIn)} in all)`],
      ['out', `${perSecond(t.bytesOutPerSecond)} (${bytes(t.bytesOut)} in all)`],
      ['uploads now', `${data.uploads.sessions} session${data.uploads.sessions === 1 ? '' : 's'} open, ${data.uploads.requests} streaming`],
    ]),
  ];
  const n = data.cache;
  cards.push(n === null || c.cache === null
    ? card('node cache', [['state', 'off (every pull reads Azure)']])
    : card('node cache', [
        ['directory', c.cache.dir],
        ['size', `${bytes(n.bytes)} of ${bytes(c.cache.size)}`],
        ['entries', count(n.entries)],
        ['hit ratio', `${share(n.hitRatio)} since start, ${share(n.recentHitRatio)} recently`],
        ['hits / misses', `${count(n.hits)} / ${count(n.misses)}`],
        ['evictions', count(n.evictions)],
      ]));
  $('overview').replaceChildren(...cards);

  $('window').textContent = data.windowSeconds === null ? '(rates from the next refresh)' : `(rates over the last ${Math.round(data.windowSeconds)} s)`;
  fill($('routes').tBodies[0], data.routes.map((route) => {
    const line = row('', [route.route, num(count(route.requests)), num(rps(route.rps)), num(count(route.clientErrors)), num(count(route.serverErrors)),
      num(share(route.errorShare)), num(perSecond(route.bytesInPerSecond)), num(perSecond(route.bytesOutPerSecond)), num(bytes(route.bytesIn)), num(bytes(route.bytesOut))]);
    line.dataset.route = route.route;
    return line;
  }), 10, 'no requests yet');

  fill($('azure').tBodies[0], data.azure.map((op) => {
    const since = op.latencyOver === 'window' ? '' : ' *';
    const errors = op.errors > 0 ? el('td', 'num', badge('bad', count(op.errors))) : num('0');
    const line = row('', [op.operation, num(count(op.requests)), num(rps(op.rps)), num(latency(op.p50) + since), num(latency(op.p99) + since), num(count(op.notFound)), errors, num(share(op.errorShare))]);
    line.dataset.operation = op.operation;
    return line;
  }), 8, 'no Azure requests yet');
  const note = data.azure.some((op) => op.latencyOver !== 'window') ? ' * since start (none in the window)' : '';
  $('azure').tFoot?.remove();
  if (note) $('azure').createTFoot().append(row('empty', [Object.assign(el('td', null, note.trim()), { colSpan: 8 })]));
}

pollMain('dashboard.json', EVERY, render, 'registry');
