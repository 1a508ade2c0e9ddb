// The per-request access log, in the format --access-log-format names:
//   json      pino JSON lines (rendered by pino-pretty with --log-format pretty), the fields
//             of exchange-record.ts: method host path status bytes ms backend service attempts id
//   common    NCSA Common Log Format:   remote - - [time] "METHOD path PROTOCOL" status bytes
//   combined  NCSA Combined Log Format: common + "referer" "user-agent"
// Either way the engines log the same fields object through a pino Logger; for
// common and combined this logger's destination rewrites each record into the
// NCSA line, so the request path does not know which format is on.
import { pino, type DestinationStream, type Logger } from 'pino';

export type AccessLogFormat = 'json' | 'common' | 'combined';
export const ACCESS_LOG_FORMATS: readonly AccessLogFormat[] = ['json', 'common', 'combined'];

/** The fields an access-log record may carry (exchange-record.ts writes them). */
interface AccessRecord {
  readonly time?: number;
  readonly method?: string;
  readonly path?: string;
  readonly status?: number;
  readonly bytes?: number;
  readonly remote?: string;
  readonly protocol?: string;
  readonly referer?: string;
  readonly agent?: string;
}

export function createAccessLog(format: AccessLogFormat, root: Logger): Logger {
  if (format === 'json') return root.child({ component: 'access' });
  const out = pino.destination({ dest: 1, sync: false });
  // A worker exits right after its drain: whatever is still buffered goes out first.
  process.once('exit', () => out.flushSync());
  const destination: DestinationStream = {
    write(line: string): void {
      let record: AccessRecord;
      try {
        record = JSON.parse(line) as AccessRecord;
      } catch {
        return;
      }
      out.write(`${ncsaLine(record, format)}\n`);
    },
  };
  return pino({ level: 'info', base: null, timestamp: pino.stdTimeFunctions.epochTime }, destination);
}

/** One record as an NCSA common or combined line; a field the record lacks is `-`, as the format has it. */
export function ncsaLine(record: AccessRecord, format: 'common' | 'combined'): string {
  const request = record.method === undefined ? '-' : `${record.method} ${record.path ?? '-'} ${record.protocol ?? 'HTTP/1.1'}`;
  const bytes = record.bytes === undefined || record.bytes === 0 ? '-' : String(record.bytes);
  const common = `${record.remote ?? '-'} - - [${clfTime(record.time ?? Date.now())}] "${escape(request)}" ${record.status ?? '-'} ${bytes}`;
  return format === 'common' ? common : `${common} "${escape(record.referer ?? '-')}" "${escape(record.agent ?? '-')}"`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `10/Oct/2000:13:55:36 +0000` (UTC: a fleet's nodes log in one zone). */
function clfTime(epochMs: number): string {
  const d = new Date(epochMs);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}

/** Quotes, backslashes and control bytes escaped as Apache's mod_log_config does, so a field never breaks the line. */
function escape(value: string): string {
  return value.replace(/["\\\x00-\x1f\x7f]/g, (c) => (c === '"' || c === '\\' ? `\\${c}` : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}
