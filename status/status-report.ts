// `tug status` for people: aligned sections of what cluster-status.ts read.
// Every value from etcd is printed with control characters replaced, so a key
// cannot send escape sequences to the operator's terminal.
import { EXPIRY_WARNING_DAYS, type ClusterStatus } from './cluster-status.ts';

export function renderStatus(status: ClusterStatus, endpoints: readonly string[]): string {
  const out: string[] = [];
  out.push(`etcd ${endpoints.join(',')}  revision ${status.revision}  (the table last changed at revision ${status.tableRevision})`);

  out.push('', `ROUTERS (${status.routers.length})`);
  if (status.routers.length === 0) out.push('  none registered');
  else {
    out.push(...table([
      ['NODE', 'APPLIED', 'HEALTHY', 'UPDATED', 'SYNC', 'VERSION', 'ADDRESSES'],
      ...status.routers.map((r) => [
        r.node, String(r.revision), r.healthy ? 'yes' : 'NO', `${Math.round(r.age / 1000)}s ago`,
        r.sync === 'stale' ? `STALE (behind ${status.tableRevision})` : r.sync,
        r.version, [`http ${r.addresses.http}`, r.addresses.https === null ? '' : `https ${r.addresses.https}`, `admin ${r.addresses.admin}`].filter(Boolean).join(' '),
      ]),
    ]));
  }

  out.push('', `SERVICES (${status.services.length})`);
  if (status.services.length === 0) out.push('  none announced');
  for (const service of status.services) {
    out.push(`  ${clean(service.name)}  ${service.instances.length} instance${service.instances.length === 1 ? '' : 's'}`);
    out.push(...table(service.instances.map((i) => [i.instance, i.host.includes(':') ? `[${i.host}]:${i.port}` : `${i.host}:${i.port}`, i.weight === 1 ? '' : `weight ${i.weight}`]), '    '));
  }

  out.push('', `ROUTES (${status.routes.length})`);
  if (status.routes.length === 0) out.push('  none');
  else {
    out.push(...table([
      ['NAME', 'HOSTS', 'PATHS', 'SERVICE', 'OPTIONS'],
      ...status.routes.map((r) => [
        r.name, r.hosts.length === 0 ? '(any)' : r.hosts.join(','), r.paths.join(','),
        r.services.length === 1 ? r.service : r.services.map((s) => `${s.service}:${s.weight}`).join(','),
        [r.balance === 'round-robin' ? '' : r.balance, r.httpsRedirect ? 'https-redirect' : '', r.hsts === null ? '' : `hsts=${r.hsts.maxAge}`,
          r.healthCheck === null ? '' : 'health-check', r.sticky === null ? '' : 'sticky', basicAuthOption(r, status)].filter(Boolean).join(' '),
      ]),
    ]));
  }

  if (status.userLists.length > 0) {
    out.push('', `USER LISTS under /auth/ (${status.userLists.length})`);
    out.push(...table([
      ['NAME', 'USERS', 'ROUTES'],
      ...status.userLists.map((l) => [l.name, l.userCount === null ? 'MISSING (its routes refuse every request)' : String(l.userCount), l.routes.join(',')]),
    ]));
  }

  const expiring = status.certificates.filter((c) => c.expiring || c.error !== undefined);
  out.push('', `CERTIFICATES expiring within ${EXPIRY_WARNING_DAYS} days (${expiring.length} of ${status.certificates.length})`);
  if (expiring.length === 0) out.push('  none');
  else {
    out.push(...table(expiring.map((c) => c.error !== undefined
      ? [c.name, '', `UNREADABLE: ${c.error}`]
      : [c.name, c.hosts.join(','), `${c.notAfter!.slice(0, 10)} (${c.daysLeft! < 0 ? 'EXPIRED' : `${c.daysLeft} days`})`])));
  }

  if (status.invalid.length > 0) {
    out.push('', `INVALID KEYS (${status.invalid.length}; routers skip them)`);
    for (const { key, error } of status.invalid) out.push(`  ${clean(key)}: ${clean(error)}`);
  }
  return `${out.join('\n')}\n`;
}

/** `basic-auth`, or with a shared list `basic-auth=<name>` (`(MISSING)` when it has no valid value). */
function basicAuthOption(route: ClusterStatus['routes'][number], status: ClusterStatus): string {
  const auth = route.middlewares?.basicAuth;
  if (auth === undefined || auth === null) return '';
  if (auth.usersKey === null) return 'basic-auth';
  const missing = status.userLists.find((l) => l.name === auth.usersKey)?.userCount === null;
  return `basic-auth=${auth.usersKey}${missing ? '(MISSING)' : ''}`;
}

/** Columns padded to their widest cell. */
function table(rows: readonly (readonly string[])[], indent = '  '): string[] {
  const cells = rows.map((row) => row.map(clean));
  const widths: number[] = [];
  for (const row of cells) row.forEach((cell, i) => { widths[i] = Math.max(widths[i] ?? 0, cell.length); });
  return cells.map((row) => `${indent}${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')}`.trimEnd());
}

function clean(value: string): string {
  return value.replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
}
