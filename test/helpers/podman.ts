// Debian's podman as a second real registry client (after skopeo), runnable
// as root in a sandbox without a container runtime set up: every call gets its
// own storage (`--root`/`--runroot` in a temporary directory, the vfs driver,
// which needs no overlay mounts) and its own auth file, and talks plain HTTP
// (`--tls-verify=false`). Only pull, push, login and logout: nothing runs a container.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class Podman {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(): Promise<Podman> {
    // Lowercase: podman names an image pulled from a layout after its path, and names are lowercase.
    const dir = join(tmpdir(), `tug-podman-${randomBytes(6).toString('hex')}`);
    await mkdir(dir);
    await writeFile(join(dir, 'auth.json'), '{}');
    return new Podman(dir);
  }

  /** Runs `podman <args>` against this instance's storage; rejects with podman's stderr. */
  async run(args: readonly string[], input?: string): Promise<string> {
    const global = ['--root', join(this.dir, 'root'), '--runroot', join(this.dir, 'run'), '--storage-driver', 'vfs'];
    try {
      const child = run('podman', [...global, ...args], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, REGISTRY_AUTH_FILE: join(this.dir, 'auth.json') } });
      if (input !== undefined) child.child.stdin!.end(input);
      return (await child).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`podman ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
    }
  }

  login(registry: string, user: string, password: string): Promise<string> {
    return this.run(['login', '--tls-verify=false', '--username', user, '--password-stdin', registry], password);
  }

  logout(registry: string): Promise<string> {
    return this.run(['logout', registry]);
  }

  /** Loads an OCI layout's image into local storage under the name `name`; returns its image ID. */
  async load(layout: string, tag: string, name: string): Promise<string> {
    const link = join(this.dir, `layout-${randomBytes(4).toString('hex')}`);
    await symlink(layout, link);
    const id = (await this.run(['pull', '--quiet', `oci:${link}:${tag}`])).trim().split('\n').pop()!;
    await this.run(['tag', id, name]);
    return id;
  }

  push(image: string, destination: string): Promise<string> {
    return this.run(['push', '--tls-verify=false', image, `docker://${destination}`]);
  }

  pull(reference: string): Promise<string> {
    return this.run(['pull', '--tls-verify=false', reference]);
  }

  /** The image's ID (the digest of its config) as podman stores it. */
  async imageId(reference: string): Promise<string> {
    return (await this.run(['image', 'inspect', '--format', '{{.Id}}', reference])).trim();
  }

  async close(): Promise<void> {
    await run('podman', ['--root', join(this.dir, 'root'), '--runroot', join(this.dir, 'run'), '--storage-driver', 'vfs', 'rmi', '--all', '--force']).catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }
}
