#!/usr/bin/env node
// The `tug` executable: runs the CLI and turns a configuration error into one
// clear line and exit code 2.
import { enableCompileCache } from 'node:module';

// Node's compile cache keeps the stripped TypeScript and the bytecode of every module loaded after
// this line (the CLI is imported dynamically below for that reason): later starts skip both, and a
// process whose modules are all cached never loads the TypeScript stripper (~17 MiB of RSS). The
// router's workers start from it (router/worker-compile-cache.ts), through the environment they
// inherit. NODE_COMPILE_CACHE names the directory (default: <tmpdir>/node-compile-cache);
// NODE_DISABLE_COMPILE_CACHE=1 turns it off.
const compileCache = enableCompileCache();
if (compileCache.directory !== undefined) process.env.NODE_COMPILE_CACHE = compileCache.directory;

const { createProgram } = await import('../cli/program.ts');
const { TugError } = await import('../common/errors.ts');

try {
  await createProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof TugError) {
    process.stderr.write(`tug: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
