/**
 * `retap report` as a process: exit codes per verdict, reports written to files and to
 * $GITHUB_STEP_SUMMARY, the JUnit file checked by xmllint against ci/reports/junit.xsd, and the
 * HTML report opened in headless Chromium (DevTools protocol over a pipe): no network request,
 * filter clicked with the mouse, screenshot taken.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mixedResults, shopResults } from '../../assertions/testing/fixtures.js';
import { writeResults } from '../../snapshots/results.js';
import { skipWithoutTool } from '../helpers/privileged.js';

const repo = resolve(import.meta.dirname, '../..');
const XSD = join(repo, 'ci/reports/junit.xsd');
const CHROMIUM = '/usr/bin/chromium';
const noXmllint = skipWithoutTool(
  'xmllint',
  ['xmllint', '--version'],
  'libxml2-utils, see ci/apt-packages.txt',
);
const noChromium = skipWithoutTool('Chromium', CHROMIUM, 'chromium, see ci/apt-packages.txt');

let work: string;
let entry: string;

/** Runs the built CLI (`npm test` builds dist/ first; TypeScript through a loader cost ~5 s a call). */
function retap(
  args: string[],
  env: Record<string, string> = {},
): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [entry, ...args], {
    cwd: work,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, GITHUB_STEP_SUMMARY: '', ...env },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'retap-report-'));
  entry = join(repo, 'bin', 'retap.js');
  await writeResults(join(work, 'mixed'), mixedResults());
  await writeResults(join(work, 'green'), shopResults({ candidateRuns: 2 }));
  await writeResults(join(work, 'slow'), shopResults({ variants: ['slow'] }));
  const broken = shopResults({ sessions: 2 });
  const run = broken.runs[0];
  if (run) run.error = { code: 'RETAP_BUILD_NOT_READY', message: 'build not ready after 30 s' };
  await writeResults(join(work, 'broken'), broken);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('retap report: exit codes and outputs', () => {
  it('0 for a green replay, 1 for assertion failures, 2 for budget failures, 3 for infrastructure, 64 for a bad budget', () => {
    expect(retap(['report', 'green', '--format', 'json']).code).toBe(0);
    const mixed = retap(['report', 'mixed']);
    expect(mixed.code).toBe(1);
    expect(mixed.stdout).toMatch(/^## ❌ retap: assertion failures/);
    expect(mixed.stderr).toMatch(/retap: assertion failures \(exit 1\)/);
    const slow = retap([
      'report',
      join('slow', 'results.json'),
      '--budget',
      'GET /orders/{id}: p95 < +20%',
      '--format',
      'json',
    ]);
    expect(slow.code).toBe(2);
    expect(JSON.parse(slow.stdout).budgets[0]).toMatchObject({
      status: 'fail',
      samples: 25,
      referenceSamples: 25,
    });
    expect(retap(['report', 'broken']).code).toBe(3);
    const bad = retap(['report', 'green', '--budget', 'p95 < 250']);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/budget 'p95 < 250' \(--budget\)/);
    expect(retap(['report', 'mixed', '--exit-zero']).code).toBe(0);
    expect(retap(['report', 'mixed', '--warn-only', 'assertions']).code).toBe(2);
  });

  it('judges a results file of format 1 (one JSON document) as its format 2 copy; refuses one cut short', () => {
    const v1 = join(repo, 'test', 'fixtures', 'results', 'v1-shop.json');
    const old = retap(['report', v1, '--format', 'json']);
    expect(old.code, old.stderr).toBe(0);
    expect(JSON.parse(old.stdout).summary).toMatchObject({ items: 12, passed: 12 });
    const copy = join(work, 'v2-copy');
    const conv = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { readResults, writeResults } from ${JSON.stringify(pathToFileURL(join(repo, 'dist', 'snapshots', 'results.js')).href)};
         await writeResults(${JSON.stringify(copy)}, await readResults(${JSON.stringify(v1)}));`,
      ],
      { encoding: 'utf8' },
    );
    expect(conv.status, conv.stderr).toBe(0);
    const now = retap(['report', copy, '--format', 'json']);
    expect(now.code).toBe(old.code);
    const strip = (j: string) => ({ ...JSON.parse(j), createdAt: 'x' });
    expect(strip(now.stdout)).toEqual(strip(old.stdout));
    // the same file without its last line: an error that says so, not the verdict of what is left
    const text = readFileSync(join(copy, 'results.json'), 'utf8').trimEnd().split('\n');
    writeFileSync(join(copy, 'results.json'), `${text.slice(0, -1).join('\n')}\n`);
    const cut = retap(['report', copy, '--format', 'json']);
    expect(cut.code).toBe(3);
    expect(cut.stderr).toMatch(
      /ends after 12 items without its trailer line.*not judged \[RETAP_RESULTS_INCOMPLETE\]/,
    );
    expect(cut.stdout).toBe('');
  });

  it('reads budgets and ignore rules from retap.yaml', () => {
    writeFileSync(
      join(work, 'strict.yaml'),
      'assertions:\n  failOn: breaking\n  budgets: ["GET /orders/{id}: p95 < +20%"]\n  ignore:\n    - { route: "GET /orders", kind: status-class }\n',
    );
    const r = retap(['report', 'slow', '--config', 'strict.yaml', '--format', 'json']);
    expect(r.code).toBe(2);
    const broken = join(work, 'broken.yaml');
    writeFileSync(broken, 'assertions:\n  budgets: ["p95 < soon"]\n');
    const e = retap(['report', 'slow', '--config', 'broken.yaml']);
    expect(e.code).toBe(3);
    expect(e.stderr).toMatch(/budget 'p95 < soon' \(broken.yaml assertions.budgets\[0\]\)/);
  });

  it('writes every format into a directory and the summary to $GITHUB_STEP_SUMMARY', () => {
    const summary = join(work, 'step-summary.md');
    writeFileSync(summary, '# earlier step\n');
    const r = retap(['report', 'mixed', '--format', 'junit,markdown,html,json', '-o', 'out/'], {
      GITHUB_STEP_SUMMARY: summary,
    });
    expect(r.code).toBe(1);
    for (const f of ['report.junit.xml', 'report.md', 'report.html', 'report.json'])
      expect(existsSync(join(work, 'out', f))).toBe(true);
    const text = readFileSync(summary, 'utf8');
    expect(text.startsWith('# earlier step\n')).toBe(true);
    expect(text).toContain('### Top differences');
    expect(text).toContain('### Latency (server-side, eBPF)');
  });
});

describe.skipIf(noXmllint)('JUnit report against the XSD (xmllint)', () => {
  it('validates the reports of a failing and a green replay', () => {
    for (const name of ['mixed', 'green', 'broken']) {
      const file = join(work, `${name}.xml`);
      retap(['report', name, '--format', 'junit', '-o', file]);
      const v = spawnSync('xmllint', ['--noout', '--schema', XSD, file], { encoding: 'utf8' });
      expect(v.status, v.stderr).toBe(0);
      expect(v.stderr).toMatch(/validates/);
    }
  });

  it('the XSD rejects what CI consumers reject', () => {
    const bad = join(work, 'bad.xml');
    writeFileSync(
      bad,
      '<?xml version="1.0"?><testsuites><testsuite name="x" tests="1"><testcase classname="c"/></testsuite></testsuites>',
    );
    expect(spawnSync('xmllint', ['--noout', '--schema', XSD, bad]).status).not.toBe(0);
    writeFileSync(bad, '<?xml version="1.0"?><testsuites><testsuite name="x" tests="-1"/></testsuites>');
    expect(spawnSync('xmllint', ['--noout', '--schema', XSD, bad]).status).not.toBe(0);
  });
});

// biome-ignore lint/suspicious/noExplicitAny: DevTools protocol messages are untyped here
type Msg = any;

/** A small DevTools protocol client over Chromium's NUL-separated pipe (fd 3 → it, fd 4 → us). */
function devtools(toChrome: Writable, fromChrome: Readable) {
  let next = 0;
  const waiting = new Map<number, (m: Msg) => void>();
  const events: Msg[] = [];
  let pending = '';
  fromChrome.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    for (let end = pending.indexOf('\0'); end !== -1; end = pending.indexOf('\0')) {
      const msg = JSON.parse(pending.slice(0, end)) as Msg;
      pending = pending.slice(end + 1);
      const done = msg.id !== undefined ? waiting.get(msg.id) : undefined;
      if (done) {
        waiting.delete(msg.id);
        done(msg);
      } else events.push(msg);
    }
  });
  return {
    events,
    async call(method: string, params: object = {}, sessionId?: string): Promise<Msg> {
      const id = ++next;
      const reply = await new Promise<Msg>((res) => {
        waiting.set(id, res);
        toChrome.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
      });
      if (reply.error) throw new Error(`${method}: ${reply.error.message}`);
      return reply.result;
    },
  };
}

describe.skipIf(noChromium)('HTML report in headless Chromium', () => {
  let chrome: ChildProcess | undefined;
  afterAll(() => {
    if (chrome?.pid && chrome.exitCode === null) {
      try {
        process.kill(-chrome.pid, 'SIGKILL');
      } catch {}
    }
  });

  it('loads without network, filters failed exchanges on click, and screenshots', async () => {
    const html = join(work, 'report.html');
    expect(retap(['report', 'mixed', '--format', 'html', '-o', html]).code).toBe(1);
    chrome = spawn(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${join(work, 'chrome-profile')}`,
        '--window-size=1280,1600',
        '--remote-debugging-pipe',
        'about:blank',
      ],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], detached: true },
    );
    let stderr = '';
    chrome.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const cdp = devtools(chrome.stdio[3] as Writable, chrome.stdio[4] as Readable);
    const { targetInfos } = await cdp.call('Target.getTargets');
    const page = (targetInfos as Msg[]).find((t) => t.type === 'page');
    expect(page, stderr).toBeDefined();
    const { sessionId } = await cdp.call('Target.attachToTarget', { targetId: page.targetId, flatten: true });
    await cdp.call('Network.enable', {}, sessionId);
    await cdp.call('Page.enable', {}, sessionId);
    await cdp.call('Page.navigate', { url: pathToFileURL(html).href }, sessionId);
    const evalJs = async (expression: string): Promise<Msg> =>
      (await cdp.call('Runtime.evaluate', { expression, returnByValue: true }, sessionId)).result.value;
    for (let i = 0; i < 100 && (await evalJs('document.readyState')) !== 'complete'; i++)
      await new Promise((r) => setTimeout(r, 50));

    const visible = 'document.querySelectorAll("tr.ex:not([hidden])").length';
    expect(await evalJs(visible)).toBe(9);
    expect(await evalJs('document.getElementById("shown").textContent')).toBe('9 of 9 shown');

    // click "failed" with the mouse, where the button is
    const box = await evalJs(
      '(() => { const r = document.querySelector("button[data-filter=fail]").getBoundingClientRect(); return { x: r.x + r.width / 2, y: r.y + r.height / 2 }; })()',
    );
    await evalJs('document.querySelector("button[data-filter=fail]").scrollIntoView()');
    const at = await evalJs(
      '(() => { const r = document.querySelector("button[data-filter=fail]").getBoundingClientRect(); return { x: r.x + r.width / 2, y: r.y + r.height / 2 }; })()',
    );
    expect(box).toBeDefined();
    for (const type of ['mousePressed', 'mouseReleased']) {
      await cdp.call(
        'Input.dispatchMouseEvent',
        { type, x: at.x, y: at.y, button: 'left', clickCount: 1 },
        sessionId,
      );
    }
    expect(await evalJs(visible)).toBe(4);
    expect(
      await evalJs(
        '[...document.querySelectorAll("tr.ex:not([hidden])")].every(r => r.dataset.status === "fail")',
      ),
    ).toBe(true);
    expect(await evalJs('document.getElementById("shown").textContent')).toBe('4 of 9 shown');

    // text filter narrows further; opening a row shows its side-by-side diff
    await evalJs(
      '(() => { const q = document.getElementById("q"); q.value = "total"; q.dispatchEvent(new Event("input")); })()',
    );
    expect(await evalJs(visible)).toBe(1);
    await evalJs('document.querySelector("tr.ex:not([hidden])").click()');
    expect(await evalJs('document.querySelector("tr.ex:not([hidden])").nextElementSibling.hidden')).toBe(
      false,
    );
    expect(
      await evalJs(
        'document.querySelector("tr.ex:not([hidden])").nextElementSibling.querySelectorAll(".side pre").length',
      ),
    ).toBe(2);

    const shot = await cdp.call(
      'Page.captureScreenshot',
      { format: 'png', captureBeyondViewport: true },
      sessionId,
    );
    const png = Buffer.from(shot.data, 'base64');
    writeFileSync(join(work, 'report.png'), png);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(10_000);

    const urls = cdp.events
      .filter((m) => m.method === 'Network.requestWillBeSent')
      .map((m) => m.params.request.url as string);
    expect(urls.length).toBeGreaterThan(0);
    expect(urls.filter((u) => !u.startsWith('file:') && !u.startsWith('data:'))).toEqual([]);
    expect(await evalJs('document.querySelectorAll("svg rect.bar").length')).toBeGreaterThan(0);

    await cdp.call('Browser.close').catch(() => undefined);
    await new Promise<void>((r) => (chrome?.exitCode !== null ? r() : chrome.once('exit', () => r())));
  });
});
