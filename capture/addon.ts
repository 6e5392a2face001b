/**
 * Loads the native addon with an explicit search order and one error listing what was tried.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ErrorCodes, RetapError } from '../core/errors.js';
import { packageRoot } from '../core/paths.js';
import type { NativeAddon } from '../native/retap_native.js';

let loaded: NativeAddon | undefined;

export function addonCandidates(): string[] {
  const out: string[] = [];
  if (process.env.RETAP_NATIVE_PATH) out.push(process.env.RETAP_NATIVE_PATH);
  const root = packageRoot();
  out.push(join(root, 'build', 'Release', 'retap_native.node'));
  out.push(join(root, 'build', 'Debug', 'retap_native.node'));
  return out;
}

export function loadAddon(): NativeAddon {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const path of addonCandidates()) {
    if (!existsSync(path)) {
      tried.push(`${path}: not found`);
      continue;
    }
    try {
      loaded = require(path) as NativeAddon;
      return loaded;
    } catch (e) {
      tried.push(`${path}: ${(e as Error).message}`);
    }
  }
  throw new RetapError(
    ErrorCodes.ADDON_LOAD,
    `cannot load the native capture addon; tried:\n    ${tried.join('\n    ')}`,
    {
      hint: 'Run ci/setup (as root) to build it, or set RETAP_NATIVE_PATH to a built retap_native.node.',
      details: { tried },
    },
  );
}
