// Debian's skopeo: the real registry client of the tests. Plain HTTP to the
// test registry (tls-verify off), no signature policy, and digests preserved,
// so what comes back can be compared byte for byte with what went in.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function skopeo(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('skopeo', ['--insecure-policy', ...args], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`skopeo ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/** Copies an image (every platform of an index) between two transports, e.g. `oci:/dir:tag` → `docker://host/repo:tag`. */
export function skopeoCopy(source: string, destination: string): Promise<string> {
  return skopeo('copy', '--all', '--preserve-digests', '--src-tls-verify=false', '--dest-tls-verify=false', source, destination);
}
