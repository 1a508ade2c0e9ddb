// The fleet units Tug renders: what each contains, that Debian's systemd
// accepts every one of them (`systemd-analyze verify`, no warnings), and the
// `tug units render` command.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VerifyRoot } from '../helpers/systemd-verify.ts';
import { renderUnits, renderAppTemplates, instantiate, checkUnits } from '../../units/render.ts';
import { resolveUnitsConfig, type RawUnitsOptions } from '../../units/units-config.ts';
import { optionValues, parseUnitFile, serializeUnit } from '../../units/unit-file.ts';
import { TUG } from '../helpers/tug-process.ts';

const config = (raw: RawUnitsOptions = {}, app = 'web') => resolveUnitsConfig(app, { image: 'localhost:5000/web:1.0', port: '3000', ...raw });

function tug(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TUG, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

describe('rendered units', () => {
  let root: VerifyRoot;
  before(async () => { root = await VerifyRoot.create(); });
  after(async () => { await root?.close(); });

  it('renders the router, the registry, the app template and its announcer', () => {
    assert.deepEqual(renderUnits(config()).map((u) => u.name), ['tug-router.service', 'tug-registry.service', 'web@.service', 'web-announce@.service']);
  });

  it('runs the router and the registry on every node (Global=true) from the Tug image with the host network', () => {
    const [router, registry] = renderUnits(config({ tugImage: 'registry.example.com/tug:0.1.0', domain: 'example.com' }));
    for (const unit of [router, registry]) {
      assert.deepEqual(optionValues(unit.options, 'X-Fleet', 'Global'), ['true']);
      assert.match(optionValues(unit.options, 'Service', 'ExecStart')[0], /^\/usr\/bin\/docker run --rm --name tug-\w+ --net=host .*registry\.example\.com\/tug:0\.1\.0 /);
    }
    assert.match(optionValues(router.options, 'Service', 'ExecStart')[0], / router --http 0\.0\.0\.0:80 --admin 0\.0\.0\.0:9090 --etcd http:\/\/127\.0\.0\.1:2379 --drain-delay 11s --domain example\.com$/);
    // docker's stop timeout covers the drain delay (11 s) and the drain timeout (10 s); systemd's covers docker's.
    assert.deepEqual(optionValues(router.options, 'Service', 'ExecStop'), ['/usr/bin/docker stop -t 30 tug-router']);
    assert.deepEqual(optionValues(router.options, 'Service', 'TimeoutStopSec'), ['35']);
    assert.match(optionValues(registry.options, 'Service', 'ExecStart')[0], /--env-file \/etc\/tug\/registry\.env .* registry$/);
  });

  it('pulls and runs the app image, removes the container, and keeps two instances off one machine', () => {
    const { app } = renderAppTemplates(config());
    const pre = optionValues(app.options, 'Service', 'ExecStartPre');
    assert.ok(pre.includes('/usr/bin/docker pull localhost:5000/web:1.0'), 'a failed pull fails the start (no "-")');
    assert.equal(optionValues(app.options, 'Service', 'ExecStart')[0], '/usr/bin/docker run --name web-%i -p 3000:3000 -e PORT=3000 localhost:5000/web:1.0');
    assert.deepEqual(optionValues(app.options, 'Service', 'ExecStop'), ['/usr/bin/docker stop -t 10 web-%i']);
    assert.deepEqual(optionValues(app.options, 'Service', 'ExecStopPost'), ['-/usr/bin/docker rm -f web-%i']);
    assert.deepEqual(optionValues(app.options, 'X-Fleet', 'Conflicts'), ['web@*.service']);
  });

  it('binds the announcer to its instance, on the same machine, announcing %i at the node\'s private address', () => {
    const { announce } = renderAppTemplates(config({ health: '/healthz' }));
    assert.deepEqual(optionValues(announce.options, 'Unit', 'BindsTo'), ['web@%i.service']);
    assert.match(optionValues(announce.options, 'Unit', 'After')[0], /^web@%i\.service\b/);
    assert.deepEqual(optionValues(announce.options, 'X-Fleet', 'MachineOf'), ['web@%i.service']);
    assert.deepEqual(optionValues(announce.options, 'Service', 'EnvironmentFile'), ['/etc/environment']);
    assert.match(optionValues(announce.options, 'Service', 'ExecStart')[0],
      / announce --etcd http:\/\/127\.0\.0\.1:2379 --service web --instance %i --address \$\{COREOS_PRIVATE_IPV4\}:3000 --health http:\/\/\$\{COREOS_PRIVATE_IPV4\}:3000\/healthz$/);
  });

  it('passes systemd-analyze verify with no warning: each global unit alone, each template with its sidekick', async () => {
    const units = renderUnits(config({ domain: 'example.com', etcdPrefix: '/tug', health: '/healthz' }));
    await root.install(units);
    for (const names of [['tug-router.service'], ['tug-registry.service'], ['web@.service', 'web-announce@.service']]) {
      const result = await root.verify(names);
      assert.equal(result.code, 0, `${names.join(' ')}: ${result.output}`);
      assert.equal(result.output, '', `${names.join(' ')} verified with warnings`);
    }
  });

  it('passes systemd-analyze verify for an instance as fleetctl submits it (template options under web@7.service)', async () => {
    const { app, announce } = renderAppTemplates(config({}, 'shop.api'));
    const instances = [instantiate(app, '7'), instantiate(announce, '7')];
    await root.install(instances);
    const result = await root.verify(instances.map((u) => u.name));
    assert.deepEqual(result, { code: 0, output: '' });
  });

  it('the verification root catches a broken unit (a missing binary, an unknown key)', async () => {
    await root.install([
      { name: 'broken.service', text: '[Service]\nExecStart=/usr/bin/not-installed\n' },
      { name: 'typo.service', text: '[Service]\nExecStart=/usr/bin/docker ps\nRestartt=always\n' },
    ]);
    assert.notEqual((await root.verify(['broken.service'])).code, 0);
    assert.match((await root.verify(['typo.service'])).output, /Unknown key 'Restartt'/);
  });

  it('round-trips: the options fleet receives serialize back to the file written', () => {
    for (const unit of renderUnits(config())) {
      assert.deepEqual(parseUnitFile(unit.text), unit.options);
      assert.equal(serializeUnit(unit.options), unit.text);
    }
  });

  it('refuses values that would change a unit\'s meaning', () => {
    assert.throws(() => config({ image: 'localhost:5000/web:1.0 --privileged' }), /--image/);
    assert.throws(() => config({ image: 'web:%i' }), /--image/);
    assert.throws(() => config({}, 'web@1'), /<app>/);
    assert.throws(() => config({ port: '0' }), /--port/);
    assert.throws(() => config({ health: '/health?x=%n' }), /--health/);
    assert.throws(() => resolveUnitsConfig('web', { port: '3000' }), /--image is required/);
    assert.throws(() => checkUnits([{ name: 'x.service', options: [{ section: 'X-Fleet', name: 'Conflict', value: 'y*' }] }]), /unknown \[X-Fleet\] option Conflict/);
  });
});

describe('tug units render', () => {
  it('writes the four unit files to --out and lists them', async () => {
    const out = await mkdtemp(join(tmpdir(), 'tug-units-'));
    try {
      const result = await tug(['units', 'render', 'web', '--image', 'localhost:5000/web:2', '--port', '8000', '--out', out]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual((await readdir(out)).sort(), ['tug-registry.service', 'tug-router.service', 'web-announce@.service', 'web@.service']);
      assert.equal(result.stdout.trim().split('\n').length, 4);
      assert.match(await readFile(join(out, 'web@.service'), 'utf8'), /docker pull localhost:5000\/web:2\n/);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('exits 2 with one line naming the flag when a value is invalid', async () => {
    const result = await tug(['units', 'render', 'web', '--image', 'Not An Image', '--port', '8000', '--out', tmpdir()]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^tug: --image: /);
    assert.equal(result.stderr.trim().split('\n').length, 1);
  });
});
