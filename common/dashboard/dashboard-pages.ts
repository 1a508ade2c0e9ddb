// A dashboard on an admin listener (the router's and the registry's): the
// component's page (`index.html` at `/`) and scripts from its own assets folder,
// the shared stylesheet and DOM helpers from common/dashboard/assets/ (all read
// once at start: no build step, nothing fetched from elsewhere, so it works
// offline), and the JSON documents the page polls. The Content-Security-Policy
// allows only the admin listener's own scripts, styles and fetches: escaping
// (the scripts use textContent only) is not the sole defence.
import { readdirSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface DashboardSite {
  /** The component's assets folder: index.html (served at `/`) and its scripts (at `/assets/<file>`). */
  readonly assets: URL;
  /** The JSON documents the page polls, by path (e.g. `/dashboard.json`). */
  readonly documents: Readonly<Record<string, () => Promise<object>>>;
}

/** What an admin listener takes (see common/admin-server.ts `pages` and `pagePaths`). */
export interface DashboardPages {
  readonly pages: (req: IncomingMessage, res: ServerResponse, path: string) => boolean;
  readonly pagePaths: readonly string[];
}

const COMMON_ASSETS = new URL('./assets/', import.meta.url);
const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
};

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

interface Asset {
  readonly body: Buffer;
  readonly type: string;
}

/** Reads the assets (throws at start-up if one is missing or two share a name) and answers the dashboard's paths. */
export function dashboardPages(site: DashboardSite): DashboardPages {
  const assets = new Map<string, Asset>();
  for (const dir of [COMMON_ASSETS, site.assets]) {
    for (const file of readdirSync(dir)) {
      const path = file === 'index.html' ? '/' : `/assets/${file}`;
      const type = TYPES[extname(file)];
      if (type === undefined) throw new Error(`dashboard asset ${file}: no content type for ${extname(file) || 'a name without extension'}`);
      if (assets.has(path)) throw new Error(`dashboard asset ${file}: also in ${COMMON_ASSETS.pathname}`);
      assets.set(path, { body: readFileSync(new URL(file, dir)), type });
    }
  }
  if (!assets.has('/')) throw new Error(`dashboard: no index.html in ${site.assets.pathname}`);
  const documents = new Map(Object.entries(site.documents));
  return {
    pagePaths: ['/', ...documents.keys()],
    pages(req, res, path) {
      const asset = assets.get(path);
      if (asset !== undefined) {
        res.writeHead(200, { 'content-type': asset.type, 'content-length': asset.body.length, 'cache-control': 'no-cache', ...SECURITY_HEADERS });
        res.end(req.method === 'HEAD' ? undefined : asset.body);
        return true;
      }
      const build = documents.get(path);
      if (build === undefined) return false;
      build().then((body) => {
        const text = `${JSON.stringify(body)}\n`;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...SECURITY_HEADERS });
        res.end(req.method === 'HEAD' ? undefined : text);
      }, (err: unknown) => {
        const text = `${JSON.stringify({ error: (err as Error).message })}\n`;
        res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...SECURITY_HEADERS });
        res.end(req.method === 'HEAD' ? undefined : text);
      });
      return true;
    },
  };
}
