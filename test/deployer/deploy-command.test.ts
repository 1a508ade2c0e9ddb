// FleetClient and the `tug deploy` verbs against the fleet double: paging
// followed, fleet's answers mapped to one error type with stable codes, and the
// exit codes and output a script can rely on.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetDouble } from '../helpers/fleet-double.ts';
import { FleetClient, FleetError } from '../../deployer/fleet-client.ts';
import { ExitCodes } from '../../deployer/exit-codes.ts';
import { TUG } from '../helpers/tug-process.ts';

const svc = [{ section: 'Service', name: 'ExecStart', value: '/usr/bin/sleep infinity' }];

function tug(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TUG, ...args], { timeout: 20_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

describe('FleetClient', () => {
  let fleet: FleetDouble;
  let client: FleetClient;
  before(async () => {
    fleet = await FleetDouble.start({ pageSize: 2 });
    for (let i = 0; i < 3; i++) fleet.cluster.addMachine({ n: String(i) });
    client = new FleetClient(fleet.endpoint);
  });
  after(async () => {
    await client?.close();
    await fleet?.close();
  });

  it('follows nextPageToken through every page', async () => {
    for (const n of [1, 2, 3, 4, 5]) await client.submitUnit(`page${n}.service`, svc, 'inactive');
    assert.deepEqual((await client.listUnits()).map((u) => u.name), ['page1.service', 'page2.service', 'page3.service', 'page4.service', 'page5.service']);
    assert.equal((await client.listMachines()).length, 3);
    assert.ok(fleet.requests.some((r) => r.startsWith('GET /fleet/v1/units?nextPageToken=')));
    for (const n of [1, 2, 3, 4, 5]) assert.equal(await client.destroyUnit(`page${n}.service`), true);
    assert.deepEqual(await client.listUnits(), [], 'an empty list ({}) is []');
  });

  it('tells created (201) from unchanged (204), and null for an unknown unit', async () => {
    assert.equal(await client.submitUnit('c.service', svc, 'launched'), 'created');
    assert.equal(await client.submitUnit('c.service', svc, 'launched'), 'unchanged');
    assert.equal((await client.getUnit('c.service'))?.desiredState, 'launched');
    assert.equal(await client.getUnit('nope.service'), null);
    assert.equal(await client.destroyUnit('nope.service'), false);
    await client.destroyUnit('c.service');
  });

  it('maps fleet\'s refusals to TUG_FLEET_REJECTED with fleet\'s message and status', async () => {
    await assert.rejects(client.setDesiredState('ghost.service', 'launched'), (err: unknown) => {
      assert.ok(err instanceof FleetError);
      assert.equal(err.code, 'TUG_FLEET_REJECTED');
      assert.equal(err.status, 409);
      assert.match(err.message, /unit does not exist and options field empty/);
      return true;
    });
  });

  it('maps no answer to TUG_FLEET_UNREACHABLE and a 5xx to TUG_FLEET_ERROR', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const dead = new FleetClient(`http://127.0.0.1:${port}`, { timeout: 1000 });
    await assert.rejects(dead.listUnits(), (err: unknown) => err instanceof FleetError && err.code === 'TUG_FLEET_UNREACHABLE' && err.status === null);
    await dead.close();
    await client.submitUnit('v.service', svc, 'inactive');
    await assert.rejects(client.setDesiredState('v.service', 'running' as 'launched'), (err: unknown) => err instanceof FleetError && err.code === 'TUG_FLEET_ERROR' && err.status === 500);
    await client.destroyUnit('v.service');
  });
});

describe('tug deploy', () => {
  let fleet: FleetDouble;
  let dir: string;
  before(async () => {
    fleet = await FleetDouble.start();
    fleet.cluster.addMachine({ role: 'edge' });
    fleet.cluster.addMachine();
    dir = await mkdtemp(join(tmpdir(), 'tug-deploy-'));
  });
  after(async () => {
    await fleet?.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    fleet.cluster.units.clear();
    fleet.cluster.reconcile();
  });

  it('submits, starts, lists, stops and destroys units (exit 0, one line per unit)', async () => {
    const file = join(dir, 'hello.service');
    await writeFile(file, '[Service]\nExecStart=/usr/bin/sleep infinity\n\n[X-Fleet]\nMachineMetadata=role=edge\n');
    const e = ['deploy', '--endpoint', fleet.endpoint];
    assert.deepEqual(await tug([...e, 'submit', file]), { code: 0, stdout: 'submitted hello.service\n', stderr: '' });
    assert.equal((await tug([...e, 'submit', file])).stdout, 'unchanged hello.service\n');
    assert.equal((await tug([...e, 'start', 'hello.service'])).stdout, 'started hello.service\n');
    await fleet.cluster.settled();
    const units = await tug([...e, 'list-units']);
    assert.equal(units.code, 0);
    assert.match(units.stdout, /^UNIT\s+DESIRED\s+CURRENT\s+MACHINE\nhello\.service\s+launched\s+launched\s+[0-9a-f]{32}\n$/);
    const states = JSON.parse((await tug([...e, 'states', '--json'])).stdout);
    assert.deepEqual(states.map((s: any) => [s.name, s.machineID, s.systemdActiveState]), [['hello.service', fleet.cluster.machines[0].id, 'active']]);
    const machines = await tug([...e, 'machines']);
    assert.match(machines.stdout, /10\.0\.0\.1\s+role=edge\n/);
    assert.equal((await tug([...e, 'stop', 'hello.service'])).stdout, 'stopped hello.service\n');
    assert.equal(fleet.cluster.units.get('hello.service')?.desiredState, 'loaded');
    assert.equal((await tug([...e, 'destroy', 'hello.service'])).stdout, 'destroyed hello.service\n');
    assert.equal(fleet.cluster.units.size, 0);
  });

  it('starts an instance of a submitted template from the template\'s options, as fleetctl does', async () => {
    const file = join(dir, 'worker@.service');
    await writeFile(file, '[Service]\nExecStart=/usr/bin/sleep %i\n\n[X-Fleet]\nConflicts=worker@*.service\n');
    const e = ['deploy', '--endpoint', fleet.endpoint];
    assert.equal((await tug([...e, 'submit', file])).code, 0);
    assert.equal((await tug([...e, 'start', 'worker@1.service'])).code, 0);
    assert.deepEqual(fleet.cluster.units.get('worker@1.service')?.options, fleet.cluster.units.get('worker@.service')?.options);
    const template = await tug([...e, 'start', 'worker@.service']);
    assert.equal(template.code, ExitCodes.USAGE);
    assert.match(template.stderr, /is a template/);
  });

  it('reads the endpoint from FLEETCTL_ENDPOINT', async () => {
    assert.equal((await tug(['deploy', 'units'], { FLEETCTL_ENDPOINT: fleet.endpoint })).code, 0);
  });

  it('exits 1 when fleet refuses (unknown unit, replaced content without --replace), with one line on stderr', async () => {
    const missing = await tug(['deploy', '--endpoint', fleet.endpoint, 'destroy', 'ghost.service']);
    assert.equal(missing.code, ExitCodes.FAILED);
    assert.equal(missing.stderr, 'tug deploy: ghost.service: unit does not exist\n');
    const file = join(dir, 'x.service');
    await writeFile(file, '[Service]\nExecStart=/usr/bin/true\n');
    await tug(['deploy', '--endpoint', fleet.endpoint, 'submit', file]);
    await writeFile(file, '[Service]\nExecStart=/usr/bin/false\n');
    const changed = await tug(['deploy', '--endpoint', fleet.endpoint, 'submit', file]);
    assert.equal(changed.code, ExitCodes.FAILED);
    assert.match(changed.stderr, /--replace/);
    assert.equal((await tug(['deploy', '--endpoint', fleet.endpoint, 'submit', '--replace', file])).stdout, 'replaced x.service (inactive)\n');
  });

  it('exits 2 on usage errors before sending anything: bad unit name, forbidden X-Fleet, bad endpoint, missing argument', async () => {
    const before = fleet.requests.length;
    const bad = join(dir, 'both.service');
    await writeFile(bad, '[Service]\nExecStart=/usr/bin/true\n\n[X-Fleet]\nGlobal=true\nMachineOf=db.service\n');
    for (const args of [
      ['--endpoint', fleet.endpoint, 'start', 'no-suffix'],
      ['--endpoint', fleet.endpoint, 'submit', bad],
      ['--endpoint', 'ftp://fleet', 'units'],
      ['--endpoint', fleet.endpoint, 'destroy'],
      ['--endpoint', fleet.endpoint, 'rollout', 'web', '--port', '3000', '--instances', '2'],
    ]) {
      const result = await tug(['deploy', ...args]);
      assert.equal(result.code, ExitCodes.USAGE, `${args.join(' ')}: ${result.stderr}`);
    }
    assert.equal(fleet.requests.length, before, 'nothing reached fleet');
  });

  it('exits 5 when fleet does not answer', async () => {
    const result = await tug(['deploy', '--endpoint', 'unix:///nonexistent/fleet.sock', 'units']);
    assert.equal(result.code, ExitCodes.UNREACHABLE);
    assert.match(result.stderr, /^tug deploy: GET \/units: fleet did not answer at unix:\/\/\/nonexistent\/fleet\.sock/);
  });
});
