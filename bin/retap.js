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
// Recording commands run under the node flags that suit a recorder (capture/node-flags.ts):
// V8 reads them only at start, so node starts again with them, in place (exec, same pid). When
// that cannot happen (no addon yet, exec refused) the command runs as it is.
if (process.env.RETAP_RECORDER_EXEC === '1') delete process.env.RETAP_RECORDER_EXEC;
else {
  const { RECORDER_COMMANDS, recorderNodeFlags } = await import(new URL('../dist/capture/node-flags.js', import.meta.url).href);
  const flags = recorderNodeFlags();
  if (RECORDER_COMMANDS.includes(process.argv[2]) && flags.length > 0) {
    try {
      const { loadAddon } = await import(new URL('../dist/capture/addon.js', import.meta.url).href);
      const addon = loadAddon();
      process.env.RETAP_RECORDER_EXEC = '1';
      addon.execNode(process.execPath, [...flags, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)]);
      delete process.env.RETAP_RECORDER_EXEC;
    } catch {
      delete process.env.RETAP_RECORDER_EXEC;
    }
  }
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
