// fleet's unit-name and [X-Fleet] rules as the deployer enforces them before
// submitting (shared/fleet-api.md, "Names" and "[X-Fleet] options").
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isTemplateName, templateOf, unitNameProblem } from '../../units/unit-name.ts';
import { expandSpecifiers, globMatches, machineOfCycle, readXFleet, xfleetProblem } from '../../units/xfleet.ts';
import type { UnitOption } from '../../units/unit-file.ts';

const x = (...pairs: [string, string][]): UnitOption[] => [
  { section: 'Service', name: 'ExecStart', value: '/bin/true' },
  ...pairs.map(([name, value]) => ({ section: 'X-Fleet', name, value })),
];

describe('unit names', () => {
  it('accepts name.suffix and name@instance.suffix with [A-Za-z0-9:_.@-]', () => {
    for (const name of ['web.service', 'web@.service', 'web@1.service', 'a:b_c-d.e@x.timer', 'web-announce@12.service', `${'a'.repeat(248)}.service`]) {
      assert.equal(unitNameProblem(name), null, name);
    }
  });

  it('refuses names fleet refuses, with the reason', () => {
    assert.match(unitNameProblem('') ?? '', /empty/);
    assert.match(unitNameProblem(`${'a'.repeat(249)}.service`) ?? '', /maximum length \(256\)/);
    assert.match(unitNameProblem('web') ?? '', /must contain "\."/);
    assert.match(unitNameProblem('web.') ?? '', /cannot end in "\."/);
    assert.match(unitNameProblem('web.exe') ?? '', /invalid unit type/);
    assert.match(unitNameProblem('we b.service') ?? '', /invalid character/);
    assert.match(unitNameProblem('web/1.service') ?? '', /invalid character/);
    assert.match(unitNameProblem('@web.service') ?? '', /cannot start in "@"/);
  });

  it('knows templates (service, socket, path, target, timer) and their instances', () => {
    assert.equal(isTemplateName('web@.service'), true);
    assert.equal(isTemplateName('web@.timer'), true);
    assert.equal(isTemplateName('web@.mount'), false);
    assert.equal(isTemplateName('web@1.service'), false);
    assert.equal(isTemplateName('web.service'), false);
    assert.equal(templateOf('web@1.service'), 'web@.service');
    assert.equal(templateOf('web.service'), null);
  });
});

describe('[X-Fleet] rules', () => {
  const refused: [string, [string, string][], RegExp][] = [
    ['MachineID with MachineOf', [['MachineID', 'abc'], ['MachineOf', 'db.service']], /MachineID cannot be used with MachineOf/],
    ['MachineID with Conflicts', [['MachineID', 'abc'], ['Conflicts', 'db*']], /MachineID cannot be used with Conflicts/],
    ['MachineID with Global', [['MachineID', 'abc'], ['Global', 'true']], /MachineID cannot be used with Global/],
    ['MachineID with Replaces', [['MachineID', 'abc'], ['Replaces', 'old.service']], /MachineID cannot be used with Replaces/],
    ['Global with MachineOf', [['Global', 'true'], ['MachineOf', 'db.service']], /Global cannot be used with MachineOf/],
    ['Global with Replaces', [['Global', 'true'], ['Replaces', 'old.service']], /Global cannot be used with Replaces/],
    ['Conflicts with Replaces', [['Conflicts', 'a*'], ['Replaces', 'old.service']], /Conflicts cannot be used with Replaces/],
    ['MachineOf itself', [['MachineOf', '%n']], /sidekick of itself/],
    ['MachineOf a unit it conflicts with', [['MachineOf', 'db@1.service'], ['Conflicts', 'db@*.service']], /unresolvable/],
  ];
  for (const [what, pairs, message] of refused) {
    it(`refuses ${what}`, () => assert.match(xfleetProblem(x(...pairs), 'web@1.service') ?? '', message));
  }

  it('accepts what fleet accepts: Global with MachineMetadata and Conflicts, MachineOf with MachineMetadata, Global=false with MachineOf', () => {
    assert.equal(xfleetProblem(x(['Global', 'true'], ['MachineMetadata', 'role=edge'], ['Conflicts', 'x*']), 'r.service'), null);
    assert.equal(xfleetProblem(x(['MachineOf', 'db.service'], ['MachineMetadata', 'disk=ssd']), 'web.service'), null);
    assert.equal(xfleetProblem(x(['Global', 'false'], ['MachineOf', 'db.service']), 'web.service'), null);
    assert.equal(xfleetProblem(x(), 'web.service'), null);
  });

  it('expands %n %N %p %i before reading values', () => {
    assert.equal(expandSpecifiers('%n|%N|%p|%i|%%', 'web-announce@3.service'), 'web-announce@3.service|web-announce@3|web-announce|3|%');
    const read = readXFleet(x(['MachineOf', 'web@%i.service'], ['Conflicts', '%p@*.service']), 'web-announce@3.service');
    assert.deepEqual(read.machineOf, ['web@3.service']);
    assert.deepEqual(read.conflicts, ['web-announce@*.service']);
  });

  it('reads MachineMetadata: quoted pairs, repeated lines, same key ORs', () => {
    const read = readXFleet(x(['MachineMetadata', '"region=west" "disk=ssd"'], ['MachineMetadata', 'region=east']), 'web.service');
    assert.deepEqual([...read.machineMetadata], [['region', ['west', 'east']], ['disk', ['ssd']]]);
  });

  it('matches Conflicts globs as fleet does', () => {
    assert.equal(globMatches('web@*.service', 'web@12.service'), true);
    assert.equal(globMatches('web@*.service', 'web-announce@12.service'), false);
    assert.equal(globMatches('web@?.service', 'web@12.service'), false);
    assert.equal(globMatches('web@[0-9].service', 'web@7.service'), true);
    assert.equal(globMatches('web.service', 'webxservice'), false);
  });

  it('finds MachineOf cycles across units', () => {
    const units = new Map([
      ['a.service', x(['MachineOf', 'b.service'])],
      ['b.service', x(['MachineOf', 'c.service'])],
      ['c.service', x(['MachineOf', 'a.service'])],
    ]);
    assert.deepEqual(machineOfCycle(units), ['a.service', 'b.service', 'c.service', 'a.service']);
    assert.equal(machineOfCycle(new Map([['a.service', x(['MachineOf', 'b.service'])], ['b.service', x()]])), null);
  });
});
