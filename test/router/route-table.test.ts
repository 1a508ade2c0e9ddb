// The routing table in isolation: resolution order, prefix matching, and
// updates that touch only what changed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BackendRegistry } from '../../router/table/backend-registry.ts';
import { RouteKeys, parseBackendValue, parseRouteRule, type TableChange } from '../../router/etcd/route-keys.ts';
import { RouteTable } from '../../router/table/route-table.ts';

const options = { maxFails: 1, ejectBase: 1000, ejectMax: 1000 };
const keys = new RouteKeys('');

function change(key: string, value: string | null): TableChange {
  const parsed = keys.parse(key, value);
  assert.ok(parsed.ok, `${key} parses`);
  return parsed.change;
}

function table(domain: string | null = 'test'): RouteTable {
  return new RouteTable(new BackendRegistry(options), domain);
}

describe('route table', () => {
  it('resolves exact hosts, then wildcards, then <service>.<domain>, then host-less rules', () => {
    const t = table();
    t.apply([
      change('/services/exact/@1', '10.0.0.1:80'),
      change('/services/wild/@1', '10.0.0.2:80'),
      change('/services/fallback/@1', '10.0.0.3:80'),
      change('/routes/a', JSON.stringify({ hosts: ['a.example.com'], service: 'exact' })),
      change('/routes/b', JSON.stringify({ hosts: ['*.example.com'], service: 'wild' })),
      change('/routes/c', JSON.stringify({ service: 'fallback' })),
    ]);
    assert.equal(t.resolve('a.example.com', '/')?.pool.name, 'exact');
    assert.equal(t.resolve('b.example.com', '/')?.pool.name, 'wild');
    assert.equal(t.resolve('x.b.example.com', '/')?.pool.name, 'fallback', 'a wildcard covers one label');
    assert.equal(t.resolve('exact.test', '/')?.pool.name, 'exact', '--domain');
    assert.equal(t.resolve('deep.exact.test', '/')?.pool.name, 'fallback', 'only <service>.<domain>');
    assert.equal(t.resolve('unknown.test', '/')?.pool.name, 'fallback');
    t.apply([change('/routes/c', null)]);
    assert.equal(t.resolve('unknown.test', '/'), null);
  });

  it('picks the longest prefix on segment boundaries, and orders equal prefixes by rule name', () => {
    const t = table(null);
    t.apply([
      change('/routes/root', JSON.stringify({ hosts: ['h'], service: 'root' })),
      change('/routes/api', JSON.stringify({ hosts: ['h'], paths: ['/api'], service: 'api' })),
      change('/routes/api-v2', JSON.stringify({ hosts: ['h'], paths: ['/api/v2/'], service: 'v2' })),
      change('/routes/z-dup', JSON.stringify({ hosts: ['h'], paths: ['/dup'], service: 'z' })),
      change('/routes/a-dup', JSON.stringify({ hosts: ['h'], paths: ['/dup'], service: 'a' })),
    ]);
    const name = (path: string) => t.resolve('h', path)?.pool.name;
    assert.equal(name('/'), 'root');
    assert.equal(name('/api'), 'api');
    assert.equal(name('/api/'), 'api');
    assert.equal(name('/api?x=1'), 'api');
    assert.equal(name('/apix'), 'root');
    assert.equal(name('/api/v2'), 'api', '/api/v2/ needs the slash');
    assert.equal(name('/api/v2/users'), 'v2');
    assert.equal(name('/dup'), 'a');
  });

  it('keeps a service known after its last instance leaves (503, not 404)', () => {
    const t = table();
    t.apply([change('/services/app/@1', '10.0.0.1:80')]);
    t.apply([change('/services/app/@1', null)]);
    const route = t.resolve('app.test', '/');
    assert.ok(route);
    assert.equal(route.pool.size, 0);
  });

  it('changes only the service an event names, and keeps a backend\'s live state across a weight change', () => {
    const t = table();
    t.apply([change('/services/one/@1', '10.0.0.1:80'), change('/services/two/@1', '10.0.0.2:80')]);
    const two = t.service('two')!;
    const twoSchedule = two.schedule;
    const backend = t.service('one')!.schedule[0];
    backend.consecutiveFailures = 1;
    t.apply([change('/services/one/@1', JSON.stringify({ host: '10.0.0.1', port: 80, weight: 5 })), change('/services/one/@2', '10.0.0.9:80')]);
    assert.equal(t.service('two')!.schedule, twoSchedule, 'the other service was not rebuilt');
    assert.equal(t.service('one')!.entries[0].backend, backend, 'same address, same Backend object');
    assert.equal(backend.consecutiveFailures, 1, 'health state survived the update');
    assert.equal(t.service('one')!.schedule.length, 6, 'weights 5 and 1');
  });

  it('shares one Backend between services that announce the same address and releases it with the last', async () => {
    const registry = new BackendRegistry(options);
    const t = new RouteTable(registry, null);
    t.apply([change('/services/a/@1', '10.0.0.1:80'), change('/services/b/@1', '10.0.0.1:80')]);
    assert.equal(registry.size, 1);
    t.apply([change('/services/a/@1', null)]);
    assert.equal(registry.size, 1);
    t.apply([change('/services/b/@1', null)]);
    assert.equal(registry.size, 0);
  });

  it('interleaves weights smoothly (nginx order)', () => {
    const t = table();
    t.apply([
      change('/services/w/a', JSON.stringify({ host: '10.0.0.1', port: 1, weight: 5 })),
      change('/services/w/b', JSON.stringify({ host: '10.0.0.2', port: 1, weight: 1 })),
      change('/services/w/c', JSON.stringify({ host: '10.0.0.3', port: 1, weight: 1 })),
    ]);
    assert.deepEqual(t.service('w')!.schedule.map((b) => b.host.slice(-1)), ['1', '1', '2', '1', '3', '1', '1']);
  });
});

describe('etcd values', () => {
  it('accepts the seed format, IPv6 and JSON backends', () => {
    assert.deepEqual(parseBackendValue('192.168.1.1:3000'), { host: '192.168.1.1', port: 3000, weight: 1 });
    assert.deepEqual(parseBackendValue('[::1]:8080'), { host: '::1', port: 8080, weight: 1 });
    assert.deepEqual(parseBackendValue('app-3.internal:80'), { host: 'app-3.internal', port: 80, weight: 1 });
    assert.deepEqual(parseBackendValue('{"host":"10.0.0.4","port":3000,"weight":7}'), { host: '10.0.0.4', port: 3000, weight: 7 });
  });

  it('refuses garbage with a reason', () => {
    for (const bad of ['', 'host', 'host:', ':80', 'h:0', 'h:65536', 'h:80:90', 'a b:80', '{"host":"h"}', '{"host":"h","port":"80"}', '{"host":"h","port":80,"weight":0}', '[1', 'null', '{', '[]']) {
      assert.equal(typeof parseBackendValue(bad), 'string', JSON.stringify(bad));
    }
    for (const bad of ['{}', '[]', '"x"', '{"service":"a","hosts":["bad host"]}', '{"service":"a","paths":["nope"]}', '{"service":"a","balance":"x"}', '{"service":"a","timeouts":{"response":-1}}', '{"service":"a","extra":1}', '{"service":"../a"}']) {
      assert.equal(typeof parseRouteRule(bad), 'string', bad);
    }
  });

  it('reads the traffic-policy fields with their defaults and refuses bad ones naming the field', () => {
    const rule = parseRouteRule('{"services":[{"service":"v1","weight":90},{"service":"v2","weight":10}],"healthCheck":true,"sticky":{"ttl":"30m"}}');
    assert.ok(typeof rule !== 'string');
    assert.equal(rule.service, 'v1');
    assert.deepEqual(rule.services, [{ service: 'v1', weight: 90 }, { service: 'v2', weight: 10 }]);
    assert.deepEqual(rule.healthCheck, { tcp: false, path: '/healthz', interval: 5000, timeout: 2000, unhealthyAfter: 2, healthyAfter: 2, expect: '2xx', expectRanges: [[200, 299]] });
    assert.deepEqual(rule.sticky, { cookie: 'tug_sticky', ttl: 1800 });
    const plain = parseRouteRule('{"service":"a"}');
    assert.ok(typeof plain !== 'string');
    assert.deepEqual([plain.services, plain.healthCheck, plain.sticky], [[{ service: 'a', weight: 1 }], null, null]);
    const refused: [string, RegExp][] = [
      ['{"service":"a","services":[{"service":"b"}]}', /"service" or "services", not both/],
      ['{"services":[]}', /"services" must be an array/],
      ['{"services":[{"service":"a","weight":0}]}', /weight above 0/],
      ['{"services":[{"service":"a","weight":101}]}', /services\[0\]\.weight/],
      ['{"services":[{"service":"a"},{"service":"a"}]}', /names "a" twice/],
      ['{"services":[{"service":"a","wieght":1}]}', /unknown field "wieght" in "services\[0\]"/],
      ['{"service":"a","healthCheck":{"interval":"fast"}}', /"healthCheck\.interval" must be a duration/],
      ['{"service":"a","healthCheck":{"interval":"1s","timeout":"2s"}}', /"healthCheck\.timeout" must not exceed/],
      ['{"service":"a","healthCheck":{"expect":"2xx,abc"}}', /"healthCheck\.expect": "abc"/],
      ['{"service":"a","healthCheck":{"unhealthyAfter":0}}', /"healthCheck\.unhealthyAfter"/],
      ['{"service":"a","healthCheck":{"method":"HEAD"}}', /unknown healthCheck field "method"/],
      ['{"service":"a","sticky":{"cookie":"a b"}}', /"sticky\.cookie"/],
      ['{"service":"a","sticky":{"ttl":"0s"}}', /"sticky\.ttl"/],
      ['{"service":"a","mirror":{"service":"b","percent":0}}', /"mirror\.percent"/],
      ['{"service":"a","mirror":{"percent":5}}', /"mirror\.service"/],
    ];
    for (const [raw, reason] of refused) assert.match(String(parseRouteRule(raw)), reason, raw);
  });

  it('ignores keys outside the schema without an error and reports malformed keys inside it', () => {
    assert.deepEqual(keys.parse('/other/thing', 'x'), { ok: false, error: null });
    const parsed = keys.parse('/services/no-instance', '10.0.0.1:80');
    assert.equal(parsed.ok, false);
    assert.match(String(!parsed.ok && parsed.error?.message), /\/services\/no-instance/);
  });
});
