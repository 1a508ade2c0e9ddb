// How Azure's failures reach the registry: every failure other than "not
// found" becomes a BlobStoreError (answered with 503); Azure's own errors never
// travel further up.
import { BlobStoreError } from './blob-store.ts';

export function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 404;
}

export function storeError(what: string, err: unknown): BlobStoreError {
  if (err instanceof BlobStoreError) return err;
  const status = (err as { statusCode?: number }).statusCode;
  const code = (err as { code?: string }).code;
  const reason = [status, code, (err as Error).message?.split('\n')[0]].filter(Boolean).join(' ');
  return new BlobStoreError(`azure: ${what}: ${reason}`, { cause: err });
}

export async function wrap<T>(what: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    throw storeError(what, err);
  }
}

export async function wrapNotFound<T>(what: string, action: () => Promise<T>): Promise<T | null> {
  try {
    return await action();
  } catch (err) {
    if (isNotFound(err)) return null;
    throw storeError(what, err);
  }
}
