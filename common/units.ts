// Parsers for the human-friendly values flags take: durations (`500ms`, `5s`,
// `2m`, or bare milliseconds) and sizes (`16KiB`, `10GiB`, or bare bytes).
import { configError } from './errors.ts';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, kb: 1000, mb: 1000 ** 2, gb: 1000 ** 3 };

export function parseDuration(flag: string, value: string | number): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(value).trim());
  if (!match) throw configError(`${flag}: expected a duration like 500ms, 5s or 2m, got ${JSON.stringify(value)}`);
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms']);
}

export function parseSize(flag: string, value: string | number): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(String(value).trim());
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined) throw configError(`${flag}: expected a size like 16KiB or 10GiB, got ${JSON.stringify(value)}`);
  return Math.round(Number(match[1]) * unit);
}

export function parseInteger(flag: string, value: string | number, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw configError(`${flag}: expected an integer ${min}..${max}, got ${JSON.stringify(value)}`);
  return n;
}
