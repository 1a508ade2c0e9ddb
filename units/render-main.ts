// Wires `tug units render`: render, write, list what was written.
import { renderUnits, writeUnits } from './render.ts';
import type { UnitsConfig } from './units-config.ts';

export async function renderUnitsToDir(config: UnitsConfig, out: string): Promise<void> {
  for (const path of await writeUnits(out, renderUnits(config))) process.stdout.write(`${path}\n`);
}
