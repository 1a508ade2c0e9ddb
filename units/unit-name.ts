// fleet's unit-name rules (shared/fleet-api.md, "Names"): `name.suffix` or
// `name@instance.suffix`, characters [A-Za-z0-9:_.@-], at most 256, not
// starting with `@`; `foo@.service` is a template, `foo@1.service` its instance.
// The deployer checks names here before fleet sees them, so a script gets one
// clear message instead of a 400.

const UNIT_TYPES = new Set(['service', 'socket', 'busname', 'target', 'snapshot', 'device', 'mount', 'automount', 'swap', 'timer', 'path', 'slice', 'scope']);
const TEMPLATE_TYPES = new Set(['service', 'socket', 'path', 'target', 'timer']);
const NAME_CHARS = /^[A-Za-z0-9:_.@-]*$/;
export const UNIT_NAME_MAX = 256;

/** Why `name` is not a valid fleet unit name, or null when it is. */
export function unitNameProblem(name: string): string | null {
  if (name.length === 0) return 'unit name cannot be empty';
  if (name.length > UNIT_NAME_MAX) return `unit name exceeds maximum length (${UNIT_NAME_MAX})`;
  const dot = name.lastIndexOf('.');
  if (dot === -1) return 'unit name must contain "."';
  if (dot === name.length - 1) return 'unit name cannot end in "."';
  const suffix = name.slice(dot + 1);
  if (!UNIT_TYPES.has(suffix)) return `invalid unit type: ${JSON.stringify(suffix)}`;
  if (!NAME_CHARS.test(name.slice(0, dot))) return `invalid character in unit name ${JSON.stringify(name)}`;
  if (name.startsWith('@')) return 'unit name cannot start in "@"';
  return null;
}

export interface UnitNameParts {
  /** Everything before `@` (or before the suffix when there is no `@`): systemd's %p. */
  readonly prefix: string;
  /** The instance (systemd's %i); '' for a template; null for a plain unit. */
  readonly instance: string | null;
  readonly suffix: string;
}

export function unitNameParts(name: string): UnitNameParts {
  const dot = name.lastIndexOf('.');
  const stem = dot === -1 ? name : name.slice(0, dot);
  const suffix = dot === -1 ? '' : name.slice(dot + 1);
  const at = stem.indexOf('@');
  return at === -1
    ? { prefix: stem, instance: null, suffix }
    : { prefix: stem.slice(0, at), instance: stem.slice(at + 1), suffix };
}

/** `foo@.service`: a template, which fleet keeps only as `inactive`. */
export function isTemplateName(name: string): boolean {
  const parts = unitNameParts(name);
  return parts.instance === '' && TEMPLATE_TYPES.has(parts.suffix);
}

/** `foo@1.service` → `foo@.service`; null when `name` is not an instance. */
export function templateOf(name: string): string | null {
  const parts = unitNameParts(name);
  return parts.instance ? `${parts.prefix}@.${parts.suffix}` : null;
}

/** `foo@.service` + `1` → `foo@1.service`. */
export function instanceName(template: string, instance: string): string {
  const parts = unitNameParts(template);
  return `${parts.prefix}@${instance}.${parts.suffix}`;
}
