// Tug's version, from package.json (one place: the CLI's --version and what a router registers in etcd).
import { readFileSync } from 'node:fs';

export const TUG_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
