// The process logger: pino JSON lines on stdout for machines, or the same
// records rendered for people by pino-pretty (`--log-format pretty`, or `auto`
// on a terminal). One logger per process; every component takes a child with
// its own `component` field. The format never changes what is logged, only how
// the line looks.
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import { configError } from './errors.ts';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** `auto` is pretty when stdout is a terminal, JSON otherwise. */
export type LogFormat = 'json' | 'pretty';
export const LOG_FORMATS = ['json', 'pretty', 'auto'] as const;

/** The environment variable every `tug` command reads for its log format (the router also has --log-format). */
export const LOG_FORMAT_ENV = 'TUG_LOG_FORMAT';

/** Resolves `json|pretty|auto` (what `flag` names in an error) to the format this process writes. */
export function resolveLogFormat(value: string | undefined, flag = LOG_FORMAT_ENV, isTTY = process.stdout.isTTY === true): LogFormat {
  const format = value === undefined || value === '' ? 'auto' : value;
  if (format === 'json' || format === 'pretty') return format;
  if (format === 'auto') return isTTY ? 'pretty' : 'json';
  throw configError(`${flag}: expected one of ${LOG_FORMATS.join(', ')}`);
}

/**
 * The logger of a process. `format` defaults to TUG_LOG_FORMAT (else auto), so commands without a
 * --log-format flag follow the environment too.
 */
export function createLogger(level: LogLevel, base: Record<string, unknown> = {}, format: LogFormat = resolveLogFormat(process.env[LOG_FORMAT_ENV])): Logger {
  return pino({
    level,
    base: { pid: process.pid, ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, format === 'pretty' ? prettyStream() : pino.destination({ dest: 1, sync: false }));
}

/**
 * pino-pretty in this process (not a worker thread: one less thread per router worker), loaded only
 * when asked for, so JSON processes never pay for it. Colours when stdout is a terminal.
 */
function prettyStream(): DestinationStream {
  const pretty = createRequire(import.meta.url)('pino-pretty') as (options: object) => DestinationStream;
  return pretty({
    colorize: process.stdout.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,component',
    singleLine: true,
    messageFormat: prettyMessage,
    messageKey: 'msg',
    // Long-lived processes: pino-pretty's own async writer, flushed by log.flush() before exit.
    sync: false,
  });
}

/** `component: message`; a request record without a message (the access log) reads `METHOD host/path status`. */
function prettyMessage(log: Record<string, unknown>, messageKey: string): string {
  const component = typeof log.component === 'string' ? `${log.component}: ` : '';
  const message = log[messageKey];
  if (typeof message === 'string' && message !== '') return `${component}${message}`;
  if (log.method !== undefined && log.status !== undefined) return `${component}${String(log.method)} ${String(log.host ?? '')}${String(log.path ?? '')} ${String(log.status)}`;
  return component.slice(0, -2);
}
