// Free loopback ports for servers that cannot listen on port 0 themselves (etcd, a multi-worker router).
export { freePort } from '../../common/listen-address.ts';
