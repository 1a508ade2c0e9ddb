// The few node:http classes the router's data path uses, taken without
// importing node:http as an ES module: an ES import builds the module's
// namespace by reading every export, and node:http's WebSocket, CloseEvent and
// MessageEvent getters load Node's bundled undici on the spot (~15 MiB more RSS
// per worker, measured). process.getBuiltinModule hands the CommonJS exports,
// whose getters run only when read. Types still come from `import type`.
const http = process.getBuiltinModule('node:http');

export const Agent = http.Agent;
export const IncomingMessage = http.IncomingMessage;
