#!/usr/bin/env node
/**
 * `retap` as the fuzz runs it: the CLI in this process, plus, every 10 s, a full GC and one line
 * on stderr with what is live (`RETAP_MEM {"s":…,"rss":…,"heapUsed":…,"external":…}`), so a
 * growing RSS can be told apart from live memory growing. Needs `node --expose-gc`.
 */
const t0 = Date.now();
setInterval(() => {
  globalThis.gc?.();
  const m = process.memoryUsage();
  const line = { s: Math.round((Date.now() - t0) / 1000), rss: m.rss, heapUsed: m.heapUsed, external: m.external };
  process.stderr.write(`RETAP_MEM ${JSON.stringify(line)}\n`);
}, 10_000).unref();
const { main } = await import(new URL('../../dist/cli/main.js', import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));
