// The node's private address, as the seed's units found it: COREOS_PRIVATE_IPV4
// from the environment, else from /etc/environment (KEY=value lines).
import { readFileSync } from 'node:fs';

export function privateIPv4(env: NodeJS.ProcessEnv = process.env, file = '/etc/environment'): string | null {
  if (env.COREOS_PRIVATE_IPV4) return env.COREOS_PRIVATE_IPV4;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const match = /^\s*(?:export\s+)?COREOS_PRIVATE_IPV4\s*=\s*["']?([^"'\s]+)["']?\s*$/m.exec(text);
  return match ? match[1] : null;
}
