// The users and ACL the access-control and token-auth tests share: alice in
// group team-a (pull and push on team-a/**), bob (everything on public/*),
// and anonymous pull on public/**.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';

/** The ACL of these tests, as an operator writes it (YAML); the README shows the same shape. */
export const TEST_ACL = `
groups:
  team-a: [alice]
rules:
  - repositories: ["team-a/**"]
    groups: [team-a]
    actions: [pull, push]
  - repositories: ["public/**"]
    anonymous: true
    actions: [pull]
  - repositories: ["public/*"]
    users: [bob]
    actions: [pull, push, delete]
`;

/** An htpasswd file of alice (alice-pw) and bob (bob-pw), at htpasswd -B's default cost. */
export async function writeUsers(dir: string): Promise<string> {
  const path = join(dir, 'htpasswd');
  await writeFile(path, `alice:${bcrypt.hashSync('alice-pw', 5)}\nbob:${bcrypt.hashSync('bob-pw', 5)}\n`);
  return path;
}
