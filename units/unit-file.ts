// A systemd unit as fleet's API carries it: an ordered list of
// {section, name, value} options. This file converts between that list and the
// unit-file text systemd reads, so the deployer submits exactly what
// `tug units render` writes to disk. It never interprets the options.

export interface UnitOption {
  readonly section: string;
  readonly name: string;
  readonly value: string;
}

/** Unit-file text: sections in order of first appearance, options in their order within each. */
export function serializeUnit(options: readonly UnitOption[]): string {
  const sections = new Map<string, string[]>();
  for (const option of options) {
    let lines = sections.get(option.section);
    if (lines === undefined) sections.set(option.section, lines = []);
    lines.push(`${option.name}=${option.value}`);
  }
  return [...sections].map(([section, lines]) => `[${section}]\n${lines.join('\n')}\n`).join('\n');
}

/**
 * Parses unit-file text into options. Comments (`#`, `;`) and blank lines are
 * dropped; a line ending in `\` continues on the next (joined with a space, as
 * systemd does). Returns a message naming the line for text that is not a unit file.
 */
export function parseUnitFile(text: string): UnitOption[] | string {
  const options: UnitOption[] = [];
  let section: string | null = null;
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const number = i + 1;
    let line = lines[i].trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      line = `${line.slice(0, -1).trimEnd()} ${lines[++i].trim()}`;
    }
    const header = /^\[([^\][]+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) return `line ${number}: expected [Section] or Key=Value`;
    if (section === null) return `line ${number}: option before the first [Section]`;
    const name = line.slice(0, eq).trim();
    if (!/^[A-Za-z0-9_-]+$/.test(name)) return `line ${number}: invalid key ${JSON.stringify(name)}`;
    options.push({ section, name, value: line.slice(eq + 1).trim() });
  }
  if (options.length === 0) return 'no options: an empty unit file';
  return options;
}

/** Values of one option in one section, in order (systemd options may repeat). */
export function optionValues(options: readonly UnitOption[], section: string, name: string): string[] {
  return options.filter((o) => o.section === section && o.name === name).map((o) => o.value);
}

/** Same content in the same order: what fleet compares to decide whether a PUT replaces a unit. */
export function sameOptions(a: readonly UnitOption[], b: readonly UnitOption[]): boolean {
  return serializeUnit(a) === serializeUnit(b);
}
