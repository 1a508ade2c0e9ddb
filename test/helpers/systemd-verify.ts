// Runs Debian's `systemd-analyze verify` on rendered units inside a throwaway
// root: the distribution's units, an executable stub for every binary the units
// call (docker is not installed here, and verify fails on a missing ExecStart
// binary), a minimal docker.service, and /etc/environment. verify ignores
// [X-Fleet]; unknown keys and unparsable values are only warnings (exit 0), so
// callers should also require empty output.
import { execFile } from 'node:child_process';
import { chmod, cp, mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const STUB_BINARIES = ['/usr/bin/docker', '/usr/bin/etcdctl'];

export class VerifyRoot {
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  static async create(): Promise<VerifyRoot> {
    const root = await mkdtemp(join(tmpdir(), 'tug-verify-'));
    await mkdir(join(root, 'usr/lib/systemd'), { recursive: true });
    await cp('/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    for (const binary of STUB_BINARIES) {
      await writeFile(join(root, binary), '#!/bin/sh\nexit 0\n');
      await chmod(join(root, binary), 0o755);
    }
    await mkdir(join(root, 'etc/systemd/system'), { recursive: true });
    await writeFile(join(root, 'etc/systemd/system/docker.service'), '[Unit]\nDescription=Docker stub\n\n[Service]\nExecStart=/usr/bin/docker daemon\n');
    await writeFile(join(root, 'etc/environment'), 'COREOS_PRIVATE_IPV4=10.0.0.4\n');
    return new VerifyRoot(root);
  }

  /** Installs unit files into the root's /etc/systemd/system. */
  async install(units: readonly { name: string; text: string }[]): Promise<void> {
    for (const unit of units) await writeFile(join(this.root, 'etc/systemd/system', unit.name), unit.text);
  }

  /** `systemd-analyze verify --root=ROOT --man=no` on the named installed units, in one call. */
  verify(names: readonly string[]): Promise<{ code: number; output: string }> {
    const paths = names.map((n) => join(this.root, 'etc/systemd/system', n));
    return new Promise((resolve) => {
      execFile('systemd-analyze', ['verify', `--root=${this.root}`, '--man=no', ...paths], { timeout: 30_000 }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, output: `${stdout}${stderr}`.trim() });
      });
    });
  }

  close(): Promise<void> {
    return rm(this.root, { recursive: true, force: true });
  }
}
