#!/usr/bin/env node
// Launcher: runs the compiled CLI from dist/. `ci/setup` (or `npm run build`) produces it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write(
    'retap: the compiled CLI is missing (dist/cli/main.js).\n  → Run ci/setup (or npm run build) in the retap checkout first.\n',
  );
  process.exit(3);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
