// The dashboard on the admin listener: the page and its two static assets (read
// once at start from router/dashboard/assets/, no build step, nothing fetched
// from elsewhere: it works offline), `/dashboard.json` (this router) and
// `/cluster.json` (every router, from etcd, as `tug status` reads it). The
// Content-Security-Policy allows only the admin listener's own script, style and
// fetches: escaping (the script uses textContent only) is not the sole defence.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface DashboardSource {
  dashboard(): Promise<object>;
  cluster(): Promise<object>;
}

const ASSETS_DIR = new URL('./assets/', import.meta.url);
const asset = (file: string, type: string) => ({ body: readFileSync(new URL(file, ASSETS_DIR)), type });
const ASSETS: Record<string, { body: Buffer; type: string }> = {
  '/': asset('index.html', 'text/html; charset=utf-8'),
  '/assets/dashboard.css': asset('dashboard.css', 'text/css; charset=utf-8'),
  '/assets/dashboard.js': asset('dashboard.js', 'text/javascript; charset=utf-8'),
};

/** What the dashboard answers, for the admin listener's list of endpoints. */
export const DASHBOARD_PATHS: readonly string[] = ['/', '/dashboard.json', '/cluster.json'];

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** Answers the dashboard's paths; returns false for any other path. */
export function serveDashboard(req: IncomingMessage, res: ServerResponse, path: string, source: DashboardSource): boolean {
  const file = ASSETS[path];
  if (file !== undefined) {
    res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.length, 'cache-control': 'no-cache', ...SECURITY_HEADERS });
    res.end(req.method === 'HEAD' ? undefined : file.body);
    return true;
  }
  const build = path === '/dashboard.json' ? source.dashboard : path === '/cluster.json' ? source.cluster : null;
  if (build === null) return false;
  build.call(source).then((body) => {
    const text = `${JSON.stringify(body)}\n`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...SECURITY_HEADERS });
    res.end(req.method === 'HEAD' ? undefined : text);
  }, (err: unknown) => {
    const text = `${JSON.stringify({ error: (err as Error).message })}\n`;
    res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
  });
  return true;
}
