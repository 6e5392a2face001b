import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRetapError } from '../core/errors.js';
import { createSnapshotWriter, openSnapshot } from './index.js';
import { sampleExchange } from './sample.js';

let dir: string;
let clean: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'retap-schema-'));
  const w = await createSnapshotWriter({ dir: join(dir, 'store'), name: 'orders', source: { host: 'h', filters: {} }, redaction: false });
  for (let i = 0; i < 3; i++) await w.append(sampleExchange(i));
  await w.finish();
  clean = w.path;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Copy the clean version, break one file with `edit`, and return the error message on open. */
async function brokenMessage(file: string, edit: (text: string) => string): Promise<string> {
  const copy = mkdtempSync(join(dir, 'v-'));
  for (const f of ['snapshot.yaml', 'exchanges.jsonl', 'transforms.yaml', 'tokens.yaml']) {
    writeFileSync(join(copy, f), readFileSync(join(clean, f)));
  }
  writeFileSync(join(copy, file), edit(readFileSync(join(copy, file), 'utf8')));
  try {
    const snap = await openSnapshot(copy);
    for await (const _ of snap.exchanges()) {
      // read all
    }
  } catch (e) {
    if (isRetapError(e)) return e.message;
    throw e;
  }
  throw new Error('expected the snapshot to be refused');
}

describe('schema failures name file, line, JSON path and fix', () => {
  it('manifest: wrong type', async () => {
    const msg = await brokenMessage('snapshot.yaml', (t) => t.replace(/^ {2}exchanges: 3$/m, '  exchanges: three'));
    expect(msg).toMatchInlineSnapshot(`"snapshot.yaml:12: $.counts.exchanges must be integer (found "three"); fix: write an integer here"`);
  });
  it('manifest: unknown field', async () => {
    const msg = await brokenMessage('snapshot.yaml', (t) => t.replace(/^notes: \[\]$/m, 'notes: []\nnotez: 1'));
    expect(msg).toMatchInlineSnapshot(`"snapshot.yaml:43: $.notez is not a known field; fix: remove it or fix its spelling (known fields: format, formatVersion, name, version, hash, parent, created, source, counts, timeRange, counters, notes, redaction, files; custom fields start with 'x-')"`);
  });
  it('manifest: missing field', async () => {
    const msg = await brokenMessage('snapshot.yaml', (t) => t.replace(/^ {2}host: h\n/m, ''));
    expect(msg).toMatchInlineSnapshot(`"snapshot.yaml:9: $.source is missing the required field 'host'; fix: add 'host:' to this object"`);
  });
  it('manifest: YAML syntax', async () => {
    const msg = await brokenMessage('snapshot.yaml', (t) => t.replace(/^name: orders$/m, 'name: [orders'));
    expect(msg).toMatchInlineSnapshot(`"snapshot.yaml:4: $ is not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]; fix: fix the YAML syntax on that line"`);
  });
  it('manifest: hand-edited value with a valid shape', async () => {
    const msg = await brokenMessage('snapshot.yaml', (t) => t.replace(/^ {2}exchanges: 3$/m, '  exchanges: 4'));
    expect(msg).toMatchInlineSnapshot(`"snapshot.yaml:5: $.hash does not match the manifest's content (computed sha256:4009b1b858e52a041b8efc29c91847866cde9739d56c1b07d1c1a270a738b53f); fix: versions are immutable: undo the edit to snapshot.yaml, or write a new version with retap snapshot filter"`);
  });
  it('exchange line: wrong type', async () => {
    const msg = await brokenMessage('exchanges.jsonl', (t) => t.replace('"method":"GET"', '"method":5'));
    expect(msg).toMatchInlineSnapshot(`"exchanges.jsonl:2: $.request.method must be string (found 5); fix: write a string here"`);
  });
  it('exchange line: bad enum', async () => {
    const msg = await brokenMessage('exchanges.jsonl', (t) => t.replace('"direction":"inbound"', '"direction":"sideways"'));
    expect(msg).toMatchInlineSnapshot(`"exchanges.jsonl:2: $.direction must be one of "inbound", "outbound" (found "sideways"); fix: use one of "inbound", "outbound""`);
  });
  it('exchange line: not JSON', async () => {
    const lines = (t: string) => t.split('\n');
    const msg = await brokenMessage('exchanges.jsonl', (t) => lines(t).map((l, i) => (i === 1 ? l.slice(0, 20) : l)).join('\n'));
    expect(msg).toMatchInlineSnapshot(`"exchanges.jsonl:2: $ is not valid JSON (Unexpected end of JSON input); fix: each line must be one complete JSON object"`);
  });
  it('transforms.yaml: unknown key in a rule', async () => {
    const msg = await brokenMessage('transforms.yaml', () => 'version: 1\nrules:\n  - id: session\n    extract:\n      - from: header\n        as: s\n    injekt: []\n');
    expect(msg).toMatchInlineSnapshot(`"transforms.yaml:7: $.rules[0].injekt is not a known field; fix: remove it or fix its spelling (known fields: id, description, enabled, match, extract, transform, inject; custom fields start with 'x-')"`);
  });
  it('transforms.yaml: extractor missing its name', async () => {
    const msg = await brokenMessage('transforms.yaml', () => 'version: 1\nrules:\n  - id: session\n    extract:\n      - from: cookie\n        as: s\n');
    expect(msg).toMatchInlineSnapshot(`"transforms.yaml:5: $.rules[0].extract[0] is missing the required field 'name'; fix: add 'name:' to this object"`);
  });
  it('tokens.yaml: wrong version', async () => {
    const msg = await brokenMessage('tokens.yaml', () => 'version: 2\ntokens: []\n');
    expect(msg).toMatchInlineSnapshot(`"tokens.yaml:1: $.version must be 1 (found 2); fix: set it to 1"`);
  });
  it('transforms.yaml: valid content that differs from the recorded hash', async () => {
    const msg = await brokenMessage('transforms.yaml', () => 'version: 1\nrules:\n  - id: session\n    x-note: extension fields are allowed\n');
    expect(msg).toMatchInlineSnapshot(`"transforms.yaml: $ does not match the sha256 in snapshot.yaml (files.transforms.sha256); fix: versions are immutable: undo the edit, or write a new version (retap snapshot filter/merge) instead of editing in place"`);
  });
});

describe('the optional k8s block on service and peer', () => {
  it('round-trips through a snapshot, and snapshots without it stay valid', async () => {
    const w = await createSnapshotWriter({
      dir: join(dir, 'k8s'),
      name: 'k8s',
      source: { host: 'h', filters: {} },
      redaction: false,
    });
    const plain = sampleExchange(0);
    const labelled = sampleExchange(1);
    labelled.service.k8s = {
      namespace: 'shop',
      pod: 'orders-7d9f-abcde',
      container: 'orders',
      workload: { kind: 'Deployment', name: 'orders' },
      node: 'node-1',
    };
    labelled.peer.k8s = { namespace: 'shop', service: 'payments' };
    await w.append(plain);
    await w.append(labelled);
    await w.finish();
    const snap = await openSnapshot(w.path);
    const back = [];
    for await (const ex of snap.exchanges()) back.push(ex);
    expect(back.find((e) => e.id === plain.id)?.service.k8s).toBeUndefined();
    const got = back.find((e) => e.id === labelled.id);
    expect(got?.service.k8s).toEqual(labelled.service.k8s);
    expect(got?.peer.k8s).toEqual({ namespace: 'shop', service: 'payments' });
    // keys in code point order, so the line is canonical
    const line = readFileSync(join(w.path, 'exchanges.jsonl'), 'utf8')
      .split('\n')
      .find((l) => l.includes('orders-7d9f'));
    expect(line).toContain(
      '"k8s":{"container":"orders","namespace":"shop","node":"node-1","pod":"orders-7d9f-abcde","workload":{"kind":"Deployment","name":"orders"}}',
    );
  });

  it('refuses a k8s block without a namespace or with an unknown field', async () => {
    const noNs = await brokenMessage('exchanges.jsonl', (t) =>
      t.replace('"service":{', '"service":{"k8s":{"pod":"p"},'),
    );
    expect(noNs).toContain('namespace');
    const unknown = await brokenMessage('exchanges.jsonl', (t) =>
      t.replace('"peer":{', '"peer":{"k8s":{"namespace":"n","podd":"p"},'),
    );
    expect(unknown).toContain('podd');
  });
});
