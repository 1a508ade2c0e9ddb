// Counts and times every request the Azure SDK sends, as a policy in its
// pipeline: this sees the real Azure operations (stage block, commit block
// list, get properties, download…) that the BlobStore interface hides, and
// times each one from the request to the response head, the SDK's retries
// included (the policy sits before the retry policy).
import type { RequestPolicy, RequestPolicyFactory, WebResource } from '@azure/storage-blob';

export type AzureOperationObserver = (operation: string, outcome: 'ok' | 'not_found' | 'error', seconds: number) => void;

/** The Blob service operation a request is, from its method and `comp`/`restype` query. */
export function azureOperation(method: string, url: string, copySource = false): string {
  const query = new URL(url).searchParams;
  const comp = query.get('comp');
  const container = query.get('restype') === 'container';
  switch (method) {
    case 'HEAD': return 'get_properties';
    case 'GET':
      if (comp === 'list') return 'list_blobs';
      if (comp === 'blocklist') return 'get_block_list';
      return container ? 'get_container' : 'download';
    case 'PUT':
      if (comp === 'block') return 'stage_block';
      if (comp === 'blocklist') return 'commit_block_list';
      if (comp === 'metadata') return 'set_metadata';
      if (copySource) return 'copy';
      return container ? 'create_container' : 'upload';
    case 'DELETE': return container ? 'delete_container' : 'delete';
    case 'POST': return comp === 'batch' ? 'batch' : 'other';
    default: return 'other';
  }
}

export function azureOperationMetrics(observe: AzureOperationObserver): RequestPolicyFactory {
  return {
    create(next: RequestPolicy): RequestPolicy {
      return {
        async sendRequest(request: WebResource) {
          const operation = azureOperation(request.method, request.url, request.headers.contains('x-ms-copy-source'));
          const started = performance.now();
          try {
            const response = await next.sendRequest(request);
            const outcome = response.status < 400 ? 'ok' : response.status === 404 ? 'not_found' : 'error';
            observe(operation, outcome, (performance.now() - started) / 1000);
            return response;
          } catch (err) {
            const outcome = (err as { statusCode?: number }).statusCode === 404 ? 'not_found' : 'error';
            observe(operation, outcome, (performance.now() - started) / 1000);
            throw err;
          }
        },
      };
    },
  };
}
