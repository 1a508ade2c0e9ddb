// The repositories the registry holds, found by walking the layout: a
// directory under repositories/ is a repository when it has `_manifests`
// (distribution's catalog uses the same rule). Names never contain a
// component starting with `_`, so those directories are never descended into.
import type { BlobStore } from '../storage/blob-store.ts';
import { StoragePaths } from '../storage/storage-paths.ts';

export class Catalog {
  readonly #store: BlobStore;

  constructor(store: BlobStore) {
    this.#store = store;
  }

  /** Every repository name, sorted. */
  async repositories(): Promise<string[]> {
    const found: string[] = [];
    const visit = async (name: string): Promise<void> => {
      const dir = name === '' ? StoragePaths.repositoriesRoot : StoragePaths.repository(name);
      const children = await this.#store.list(dir);
      if (name !== '' && children.includes('_manifests')) found.push(name);
      for (const child of children) {
        if (!child.startsWith('_')) await visit(name === '' ? child : `${name}/${child}`);
      }
    };
    await visit('');
    return found.sort();
  }
}
