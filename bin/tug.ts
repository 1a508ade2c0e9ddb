#!/usr/bin/env node
// The `tug` executable: runs the CLI and turns a configuration error into one
// clear line and exit code 2.
import { createProgram } from '../cli/program.ts';
import { TugError } from '../common/errors.ts';

try {
  await createProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof TugError) {
    process.stderr.write(`tug: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
