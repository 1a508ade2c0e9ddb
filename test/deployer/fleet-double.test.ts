// The fleet double against shared/fleet-api.md, one test per fact: if the
// double drifts from the facts, the deployer's tests stop meaning anything.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeToken, FleetDouble } from '../helpers/fleet-double.ts';
import { waitFor } from '../helpers/wait.ts';

const svc = (extra: { section: string; name: string; value: string }[] = []) => [{ section: 'Service', name: 'ExecStart', value: '/usr/bin/sleep infinity' }, ...extra];
const xf = (name: string, value: string) => ({ section: 'X-Fleet', name, value });

describe('fleet double: the facts of fleet API v1', () => {
  let fleet: FleetDouble;
  const started: string[] = [];
  const call = async (method: string, path: string, body?: unknown, contentType = 'application/json') => {
    const res = await fetch(`${fleet.endpoint}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': contentType },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, json: text ? JSON.parse(text) as any : undefined };
  };
  const put = (name: string, body: unknown) => call('PUT', `/fleet/v1/units/${name}`, body);

  before(async () => {
    fleet = await FleetDouble.start({
      pageSize: 3,
      agent: { start: async (u) => { started.push(`${u.name}@${u.machine.primaryIP}`); }, stop: async () => {} },
    });
    fleet.cluster.addMachine({ region: 'west' });
    fleet.cluster.addMachine({ region: 'east' });
  });
  after(async () => { await fleet?.close(); });
  beforeEach(async () => {
    await fleet.cluster.settled();
    fleet.cluster.units.clear();
    fleet.cluster.reconcile();
    await fleet.cluster.settled();
    started.length = 0;
  });

  describe('transport', () => {
    it('serves /fleet/v1 and the /v1-alpha alias', async () => {
      assert.equal((await call('GET', '/fleet/v1/units')).status, 200);
      assert.equal((await call('GET', '/v1-alpha/units')).status, 200);
      assert.equal((await call('GET', '/v2/units')).status, 404);
    });

    it('answers 415 to a PUT without Content-Type: application/json', async () => {
      const res = await call('PUT', '/fleet/v1/units/a.service', { options: svc() }, 'text/plain');
      assert.equal(res.status, 415);
      assert.equal((await call('GET', '/fleet/v1/units/a.service')).status, 404, 'nothing was created');
    });

    it('reports errors as {"error":{"code","message"}}', async () => {
      const res = await call('GET', '/fleet/v1/units/nope.service');
      assert.equal(res.status, 404);
      assert.deepEqual(Object.keys(res.json), ['error']);
      assert.equal(res.json.error.code, 404);
      assert.equal(typeof res.json.error.message, 'string');
    });

    it('answers an empty list as {} (the key is absent)', async () => {
      const res = await call('GET', '/fleet/v1/units');
      assert.equal(res.text, '{}');
    });

    it('pages lists with nextPageToken and follows ?nextPageToken=', async () => {
      for (const n of [1, 2, 3, 4]) assert.equal((await put(`p${n}.service`, { options: svc(), desiredState: 'inactive' })).status, 201);
      const first = await call('GET', '/fleet/v1/units');
      assert.deepEqual(first.json.units.map((u: any) => u.name), ['p1.service', 'p2.service', 'p3.service']);
      assert.equal(first.json.nextPageToken, encodeToken(3, 2));
      const second = await call('GET', `/fleet/v1/units?nextPageToken=${first.json.nextPageToken}`);
      assert.deepEqual(second.json.units.map((u: any) => u.name), ['p4.service']);
      assert.equal(second.json.nextPageToken, undefined);
    });

    it('answers 400 to a bad page token', async () => {
      for (const token of ['!!!', encodeToken(50, 1), encodeToken(3, 0), 'AAA=']) {
        const res = await call('GET', `/fleet/v1/units?nextPageToken=${encodeURIComponent(token)}`);
        assert.equal(res.status, 400, token);
        assert.equal(res.json.error.code, 400);
      }
    });
  });

  describe('units', () => {
    it('describes a unit as {name, options, desiredState, currentState, machineID}', async () => {
      await put('u.service', { options: svc(), desiredState: 'inactive' });
      const inactive = (await call('GET', '/fleet/v1/units/u.service')).json;
      assert.deepEqual(inactive, { name: 'u.service', options: svc(), desiredState: 'inactive', currentState: 'inactive' });
      await put('u.service', { desiredState: 'launched' });
      await fleet.cluster.settled();
      const launched = (await call('GET', '/fleet/v1/units/u.service')).json;
      assert.equal(launched.currentState, 'launched');
      assert.match(launched.machineID, /^[0-9a-f]{32}$/);
    });

    it('gives a global unit neither currentState nor machineID', async () => {
      await put('g.service', { options: svc([xf('Global', 'true')]), desiredState: 'launched' });
      await fleet.cluster.settled();
      const unit = (await call('GET', '/fleet/v1/units/g.service')).json;
      assert.deepEqual(Object.keys(unit).sort(), ['desiredState', 'name', 'options']);
      assert.deepEqual(started.sort(), ['g.service@10.0.0.1', 'g.service@10.0.0.2']);
    });

    it('moves desiredState inactive → loaded → launched and back', async () => {
      await put('s.service', { options: svc(), desiredState: 'inactive' });
      for (const state of ['loaded', 'launched', 'loaded', 'inactive']) {
        assert.equal((await put('s.service', { desiredState: state })).status, 204);
        await fleet.cluster.settled();
        const unit = (await call('GET', '/fleet/v1/units/s.service')).json;
        assert.equal(unit.desiredState, state);
        assert.equal(unit.currentState, state);
        assert.equal('machineID' in unit, state !== 'inactive');
      }
    });

    it('GET /units/<name> is 200 or 404; DELETE is 204 or 404', async () => {
      await put('d.service', { options: svc(), desiredState: 'launched' });
      assert.equal((await call('GET', '/fleet/v1/units/d.service')).status, 200);
      assert.equal((await call('DELETE', '/fleet/v1/units/d.service')).status, 204);
      assert.equal((await call('GET', '/fleet/v1/units/d.service')).status, 404);
      assert.equal((await call('DELETE', '/fleet/v1/units/d.service')).status, 404);
    });
  });

  describe('PUT /units/<name>', () => {
    it('new unit with options: 201, no body', async () => {
      const res = await put('n.service', { options: svc(), desiredState: 'launched' });
      assert.equal(res.status, 201);
      assert.equal(res.text, '');
    });

    it('same options, or only {"desiredState"}: 204', async () => {
      await put('n.service', { options: svc(), desiredState: 'loaded' });
      assert.equal((await put('n.service', { options: svc(), desiredState: 'launched' })).status, 204);
      assert.equal((await put('n.service', { desiredState: 'loaded' })).status, 204);
    });

    it('different options for an existing unit: 201, the unit is replaced and restarts with the new content', async () => {
      await put('r.service', { options: svc(), desiredState: 'launched' });
      await fleet.cluster.settled();
      const next = svc([{ section: 'Service', name: 'Environment', value: 'V=2' }]);
      assert.equal((await put('r.service', { options: next, desiredState: 'launched' })).status, 201);
      await fleet.cluster.settled();
      assert.deepEqual((await call('GET', '/fleet/v1/units/r.service')).json.options, next);
      const journal = fleet.cluster.journal.filter((l) => l.includes('r.service'));
      assert.deepEqual(journal.map((l) => l.split(' ')[0]).slice(-3), ['start', 'stop', 'start']);
    });

    it('unknown unit and no options: 409 "unit does not exist and options field empty"', async () => {
      const res = await put('ghost.service', { desiredState: 'launched' });
      assert.equal(res.status, 409);
      assert.equal(res.json.error.message, 'unit does not exist and options field empty');
    });

    it('existing unit, options but no desiredState: 409', async () => {
      await put('e.service', { options: svc(), desiredState: 'inactive' });
      assert.equal((await put('e.service', { options: svc() })).status, 409);
    });

    it('bad name, a name in the body that differs from the URL, launching a template, a forbidden X-Fleet combination: 400', async () => {
      assert.equal((await put('bad%20name.service', { options: svc() })).status, 400);
      assert.equal((await put('noext', { options: svc() })).status, 400);
      assert.equal((await put('@x.service', { options: svc() })).status, 400);
      assert.equal((await put('a.service', { name: 'b.service', options: svc() })).status, 400);
      assert.equal((await put('t@.service', { options: svc(), desiredState: 'launched' })).status, 400);
      assert.equal((await put('t@.service', { options: svc(), desiredState: 'inactive' })).status, 201, 'a template may be inactive');
      assert.equal((await put('t@.service', { desiredState: 'loaded' })).status, 400);
      assert.equal((await put('bad.service', { options: svc([xf('Global', 'true'), xf('MachineOf', 'a.service')]) })).status, 400);
      assert.equal((await call('GET', '/fleet/v1/units/bad.service')).status, 404);
    });

    it('unknown desiredState value: 500 (fleet does not validate it)', async () => {
      await put('v.service', { options: svc(), desiredState: 'inactive' });
      assert.equal((await put('v.service', { desiredState: 'running' })).status, 500);
      assert.equal((await call('GET', '/fleet/v1/units/v.service')).json.desiredState, 'inactive');
    });
  });

  describe('[X-Fleet]', () => {
    const refused: [string, ReturnType<typeof xf>[]][] = [
      ['MachineID with MachineOf', [xf('MachineID', 'abc'), xf('MachineOf', 'a.service')]],
      ['MachineID with Conflicts', [xf('MachineID', 'abc'), xf('Conflicts', 'a*')]],
      ['MachineID with Global', [xf('MachineID', 'abc'), xf('Global', 'true')]],
      ['MachineID with Replaces', [xf('MachineID', 'abc'), xf('Replaces', 'a.service')]],
      ['Global with MachineOf', [xf('Global', 'true'), xf('MachineOf', 'a.service')]],
      ['Global with Replaces', [xf('Global', 'true'), xf('Replaces', 'a.service')]],
      ['Conflicts with Replaces', [xf('Conflicts', 'a*'), xf('Replaces', 'a.service')]],
      ['MachineOf itself (circular)', [xf('MachineOf', '%n')]],
    ];
    for (const [what, options] of refused) {
      it(`refuses ${what} with 400`, async () => {
        const res = await put('x.service', { options: svc(options), desiredState: 'launched' });
        assert.equal(res.status, 400);
        assert.equal(res.json.error.code, 400);
      });
    }

    it('accepts Global with MachineMetadata and Conflicts', async () => {
      assert.equal((await put('gm.service', { options: svc([xf('Global', 'true'), xf('MachineMetadata', 'region=west'), xf('Conflicts', 'z*')]), desiredState: 'launched' })).status, 201);
      await fleet.cluster.settled();
      assert.deepEqual(started, ['gm.service@10.0.0.1']);
    });

    it('MachineID runs the unit on that machine', async () => {
      const target = fleet.cluster.machines[1].id;
      await put('m.service', { options: svc([xf('MachineID', target)]), desiredState: 'launched' });
      await fleet.cluster.settled();
      assert.equal((await call('GET', '/fleet/v1/units/m.service')).json.machineID, target);
    });

    it('MachineOf runs a sidekick on its unit\'s machine (with %i expanded)', async () => {
      await put('app@1.service', { options: svc([xf('Conflicts', 'app@*.service')]), desiredState: 'launched' });
      await put('app@2.service', { options: svc([xf('Conflicts', 'app@*.service')]), desiredState: 'launched' });
      await put('side@2.service', { options: svc([xf('MachineOf', 'app@%i.service')]), desiredState: 'launched' });
      await fleet.cluster.settled();
      const get = async (n: string) => (await call('GET', `/fleet/v1/units/${n}`)).json.machineID;
      assert.equal(await get('side@2.service'), await get('app@2.service'));
    });

    it('MachineMetadata: the same key ORs, different keys AND', async () => {
      await put('east.service', { options: svc([xf('MachineMetadata', '"region=east" "region=north"')]), desiredState: 'launched' });
      await put('none.service', { options: svc([xf('MachineMetadata', 'region=east'), xf('MachineMetadata', 'disk=ssd')]), desiredState: 'launched' });
      await fleet.cluster.settled();
      assert.equal((await call('GET', '/fleet/v1/units/east.service')).json.machineID, fleet.cluster.machines[1].id);
      assert.equal((await call('GET', '/fleet/v1/units/none.service')).json.machineID, undefined, 'no machine has both');
    });

    it('Conflicts keeps instances apart; one more than machines waits unscheduled', async () => {
      for (const n of [1, 2, 3]) await put(`web@${n}.service`, { options: svc([xf('Conflicts', 'web@*.service')]), desiredState: 'launched' });
      await fleet.cluster.settled();
      const machines = await Promise.all([1, 2, 3].map(async (n) => (await call('GET', `/fleet/v1/units/web@${n}.service`)).json.machineID));
      assert.notEqual(machines[0], machines[1]);
      assert.equal(machines[2], undefined);
      await call('DELETE', '/fleet/v1/units/web@1.service');
      await fleet.cluster.settled();
      assert.equal((await call('GET', '/fleet/v1/units/web@3.service')).json.machineID, machines[0], 'scheduled once a machine is free');
    });
  });

  describe('state and machines', () => {
    it('GET /state lists {name, hash, machineID, systemdLoadState, systemdActiveState, systemdSubState}, filtered by machineID and unitName', async () => {
      await put('a.service', { options: svc([xf('MachineID', fleet.cluster.machines[0].id)]), desiredState: 'launched' });
      await put('b.service', { options: svc([xf('MachineID', fleet.cluster.machines[1].id)]), desiredState: 'launched' });
      await fleet.cluster.settled();
      const all = (await call('GET', '/fleet/v1/state')).json.states;
      assert.deepEqual(all.map((s: any) => s.name), ['a.service', 'b.service']);
      assert.deepEqual(Object.keys(all[0]).sort(), ['hash', 'machineID', 'name', 'systemdActiveState', 'systemdLoadState', 'systemdSubState']);
      assert.match(all[0].hash, /^[0-9a-f]{40}$/);
      assert.deepEqual([all[0].systemdLoadState, all[0].systemdActiveState, all[0].systemdSubState], ['loaded', 'active', 'running']);
      const byMachine = (await call('GET', `/fleet/v1/state?machineID=${fleet.cluster.machines[1].id}`)).json.states;
      assert.deepEqual(byMachine.map((s: any) => s.name), ['b.service']);
      const byName = (await call('GET', '/fleet/v1/state?unitName=a.service')).json.states;
      assert.deepEqual(byName.map((s: any) => s.machineID), [fleet.cluster.machines[0].id]);
      assert.equal((await call('GET', '/fleet/v1/state?unitName=zzz.service')).text, '{}');
    });

    it('marks a unit whose start fails as failed', async () => {
      const failing = await FleetDouble.start({ agent: { start: async () => { throw new Error('image not found'); }, stop: async () => {} } });
      try {
        failing.cluster.addMachine();
        await fetch(`${failing.endpoint}/fleet/v1/units/f.service`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ options: svc(), desiredState: 'launched' }) });
        await waitFor(async () => ((await (await fetch(`${failing.endpoint}/fleet/v1/state`)).json()) as any).states?.[0]?.systemdActiveState === 'failed', { what: 'failed state' });
      } finally {
        await failing.close();
      }
    });

    it('GET /machines lists {id, primaryIP, metadata}', async () => {
      const res = await call('GET', '/fleet/v1/machines');
      assert.deepEqual(res.json.machines.map((m: any) => [m.primaryIP, m.metadata]), [['10.0.0.1', { region: 'west' }], ['10.0.0.2', { region: 'east' }]]);
    });

    it('PATCH /machines takes add/replace/remove ops with wrapped values and answers 204', async () => {
      const id = fleet.cluster.machines[0].id;
      const ok = await call('PATCH', '/fleet/v1/machines', [
        { op: 'add', path: `/${id}/metadata/disk`, value: { value: 'ssd' } },
        { op: 'replace', path: `/${id}/metadata/region`, value: { value: 'north' } },
      ]);
      assert.equal(ok.status, 204);
      assert.deepEqual(fleet.cluster.machines[0].metadata, { region: 'north', disk: 'ssd' });
      assert.equal((await call('PATCH', '/fleet/v1/machines', [{ op: 'remove', path: `/${id}/metadata/disk` }])).status, 204);
      assert.deepEqual(fleet.cluster.machines[0].metadata, { region: 'north' });
      assert.equal((await call('PATCH', '/fleet/v1/machines', [{ op: 'add', path: `/${id}/metadata/disk`, value: 'ssd' }])).status, 400, 'an unwrapped value');
      assert.equal((await call('PATCH', '/fleet/v1/machines', [{ op: 'move', path: `/${id}/metadata/disk`, value: { value: 'x' } }])).status, 400);
      assert.equal((await call('PATCH', '/fleet/v1/machines', [{ op: 'add', path: `/${id}/disk`, value: { value: 'x' } }])).status, 400);
      await call('PATCH', '/fleet/v1/machines', [{ op: 'replace', path: `/${id}/metadata/region`, value: { value: 'west' } }]);
    });
  });
});
