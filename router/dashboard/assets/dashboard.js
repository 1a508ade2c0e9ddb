// The router dashboard's script (an ES module): polls dashboard.json every 2 s
// and cluster.json every 5 s and renders them with the shared DOM helpers
// (common/dashboard/assets/dashboard-dom.js), which set text only: nothing
// stored in etcd (a route path, an instance name) can ever become markup or script.
import { badge, card, clock, duration, el, fill, mono, num, poll, pollMain, row, rps, share } from './dashboard-dom.js';

const DASHBOARD_EVERY = 2000;
const CLUSTER_EVERY = 5000;
const $ = (id) => document.getElementById(id);

function render(data) {
  const now = Date.parse(data.generatedAt);
  const r = data.router;
  $('node').textContent = `${r.node} · ${r.version}`;
  document.title = `Tug router ${r.node}`;
  const state = r.draining ? badge('warn', 'draining') : r.ready ? badge('ok', 'ready') : badge('bad', 'not ready');
  $('summary').replaceChildren(state, ` up ${duration(r.uptimeSeconds)} · admin ${r.admin} · updated ${clock(data.generatedAt)}`);

  const e = data.etcd;
  const etcdState = e.connected ? badge('ok', 'connected') : badge('bad', 'unreachable');
  $('overview').replaceChildren(
    card('etcd', [
      ['state', etcdState],
      ['synced', e.synced ? 'first snapshot applied' : 'waiting for the first snapshot'],
      ['revision applied', String(e.revision)],
      ['last contact', e.secondsSinceContact === null ? 'never' : `${e.secondsSinceContact} s ago`],
      ['endpoints', e.endpoints.join(', ')],
      ...(e.prefix ? [['prefix', e.prefix]] : []),
    ]),
    card('workers', [
      ['listening', `${data.workers.listening} of ${data.workers.configured}`],
      ['processes', data.workers.processes.map((p) => `${p.pid}${p.listening ? '' : ' (starting)'}`).join(', ') || 'none'],
    ]),
    card('table', [
      ['services', String(data.services.length)],
      ['instances', String(data.services.reduce((n, s) => n + s.instances.length, 0))],
      ['routes', String(data.routes.length)],
      ['certificates', String(data.certificates.length)],
    ]),
  );

  const serviceRows = [];
  for (const s of data.services) {
    const inFlight = s.instances.reduce((n, i) => n + i.inFlight, 0);
    const ejected = s.instances.filter((i) => i.state === 'ejected').length;
    const summary = s.instances.length === 0 ? badge('bad', 'no live instance: 503')
      : ejected === s.instances.length ? badge('bad', 'all ejected')
      : ejected > 0 ? badge('warn', `${ejected} ejected`) : badge('ok', 'healthy');
    const head = row('service', [s.name, `${s.instances.length} instance${s.instances.length === 1 ? '' : 's'}`, el('td', null, summary), num(inFlight), num(rps(s.rps)), num(share(s.errorShare)), num('')]);
    head.dataset.service = s.name;
    serviceRows.push(head);
    for (const i of s.instances) {
      const until = i.ejectedUntil === null ? null : Date.parse(i.ejectedUntil);
      const stateCell = i.state === 'ejected'
        ? badge('bad', `ejected until ${clock(i.ejectedUntil)} (${duration(Math.max(0, (until - now) / 1000))} left)`)
        : badge('ok', 'healthy');
      const line = row('instance', [i.instance, mono(i.address + (i.weight !== 1 ? ` ×${i.weight}` : '')), el('td', 'state', stateCell), num(i.inFlight), num(rps(i.rps)), num(share(i.errorShare)), num(i.ejections)]);
      line.dataset.service = s.name;
      line.dataset.state = i.state;
      serviceRows.push(line);
    }
  }
  fill($('services').tBodies[0], serviceRows, 7, 'no services in etcd yet');

  fill($('routes').tBodies[0], data.routes.map((route) => {
    const options = [route.balance];
    if (route.httpsRedirect) options.push('HTTPS redirect');
    if (route.hsts) options.push(`HSTS ${route.hsts.maxAge} s`);
    if (route.timeouts.response !== undefined) options.push(`response ${route.timeouts.response} ms`);
    if (route.timeouts.idle !== undefined) options.push(`idle ${route.timeouts.idle} ms`);
    if (route.healthCheck) options.push(route.healthCheck.tcp ? 'TCP checks' : `checks ${route.healthCheck.path}`);
    if (route.sticky) options.push(`sticky (${route.sticky.cookie})`);
    const services = route.services.length > 1 ? route.services.map((s) => `${s.service} ${s.weight}`).join(', ') : route.service;
    return row('', [route.name, mono(route.hosts.length > 0 ? route.hosts.join(', ') : 'any host'), mono(route.paths.join(', ')), services, options.join(', ')]);
  }), 5, 'no route rules (hosts <service>.<domain> still route)');

  fill($('certificates').tBodies[0], data.certificates.map((c) => {
    const kind = c.daysLeft < 7 ? 'bad' : c.daysLeft < 21 ? 'warn' : 'ok';
    return row('', [c.name, mono(c.hosts.join(', ')), el('td', null, badge(kind, `${c.notAfter.slice(0, 10)} (${c.daysLeft} days)`)), c.source]);
  }), 4, 'no certificates');
}

function renderCluster(cluster) {
  const stale = cluster.routers.filter((r) => r.sync !== 'in sync').length;
  $('cluster-summary').textContent = `etcd revision ${cluster.revision}; the table last changed at revision ${cluster.tableRevision}; ${cluster.routers.length} router${cluster.routers.length === 1 ? '' : 's'} registered${stale > 0 ? `, ${stale} not in sync` : ''}.`;
  fill($('routers').tBodies[0], cluster.routers.map((r) => {
    const sync = r.sync === 'in sync' ? badge('ok', 'in sync') : r.sync === 'behind' ? badge('warn', 'behind') : badge('bad', 'STALE');
    const addresses = [`http ${r.addresses.http}`, r.addresses.https ? `https ${r.addresses.https}` : null, `admin ${r.addresses.admin}`].filter(Boolean).join(' · ');
    const line = row('', [r.node, mono(addresses), r.version, num(r.revision), el('td', null, r.healthy ? badge('ok', 'yes') : badge('bad', 'no')), num(duration(r.age / 1000)), el('td', null, sync)]);
    line.dataset.router = r.node;
    return line;
  }), 7, 'no router has registered');
}

pollMain('dashboard.json', DASHBOARD_EVERY, render, 'router');
poll('cluster.json', CLUSTER_EVERY, renderCluster, (err) => {
  $('cluster-summary').textContent = `cluster view unavailable: ${err.message}`;
});
