import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyWithGoVersion, goPeers, skipWithoutGoPeers } from '../../test/helpers/go-peers.js';
import { withElf } from '../elf.js';
import { GO_TLS_READ, GO_TLS_WRITE, inspectGoBinary } from './binary.js';
import { parseGoVersion, readBuildInfo } from './buildinfo.js';
import { structOffsets } from './dwarf.js';
import { LAYOUT_STRUCTS, layoutFromDwarf, layoutFromTable } from './layout.js';
import { GO_LAYOUTS } from './layouts.js';
import { allFunctions, findFunctions } from './pclntab.js';
import { returnOffsets } from './x86.js';

describe('Go versions', () => {
  it('parses releases and pre-releases, not other strings', () => {
    expect(parseGoVersion('go1.22.12')).toEqual([1, 22, 12]);
    expect(parseGoVersion('go1.21rc2')).toEqual([1, 21, 0]);
    expect(parseGoVersion('go1.26.8 X:nodwarf5')).toEqual([1, 26, 8]);
    expect(parseGoVersion('devel go1.27-abcdef')).toBeUndefined();
  });

  it('the offset table covers 1.18 to 1.26, one row per release line', () => {
    expect(Object.keys(GO_LAYOUTS)).toEqual([
      '1.18',
      '1.19',
      '1.20',
      '1.21',
      '1.22',
      '1.23',
      '1.24',
      '1.25',
      '1.26',
    ]);
    expect(layoutFromTable([1, 22, 3])).toBe(GO_LAYOUTS['1.22']);
    expect(layoutFromTable([1, 17, 13])).toBeUndefined();
  });
});

it('a program that is not Go is not inspected as one', () => {
  withElf(process.execPath, (elf) => {
    expect(readBuildInfo(elf)).toBeUndefined();
    expect(inspectGoBinary(elf)).toEqual({ kind: 'not-go' });
  });
});

describe.skipIf(skipWithoutGoPeers())('real Go binaries (test/fixtures/go)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'retap-gobin-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('build information: the version and module lines', () => {
    const peers = goPeers();
    withElf(peers.gotls, (elf) => {
      const info = readBuildInfo(elf)!;
      expect(info.version).toMatch(/^go1\.\d+/);
      expect(info.modinfo).toMatch(/^path\tretap\.dev\/test\/gotls\n/m);
    });
    withElf(peers.gotlsOld, (elf) => expect(readBuildInfo(elf)?.version).toBe('go1.22.12'));
  });

  it('with symbols and DWARF: functions from .symtab, offsets from DWARF', () => {
    withElf(goPeers().gotls, (elf) => {
      const r = inspectGoBinary(elf);
      expect(r.kind).toBe('ok');
      if (r.kind !== 'ok') return;
      expect(r.plan).toMatchObject({ symbolsFrom: 'symtab', offsetsFrom: 'dwarf' });
      expect(r.plan.spec.readEntry).toHaveLength(1);
      expect(r.plan.spec.writeEntry).toHaveLength(1);
      expect(r.plan.spec.readReturns.length).toBeGreaterThanOrEqual(2);
      // every return site is a ret instruction in the file, inside Read
      const image = readFileSync(goPeers().gotls);
      for (const off of r.plan.spec.readReturns) expect(image[off]).toBe(0xc3);
      // the entry probes sit just past the stack check (cmp rsp, 0x10(r14); jbe morestack), which
      // morestack would re-run: a probe on the first byte fired twice when the stack grew
      const [read] = withElf(goPeers().gotls, (elf) => [...findFunctions(elf, [GO_TLS_READ]).values()]);
      const readAt = withElf(goPeers().gotls, (elf) => elf.fileOffset(read!.entry)!);
      expect(image.subarray(readAt, readAt + 4).toString('hex')).toBe('493b6610');
      expect(image.subarray(readAt + 4, readAt + 6).toString('hex')).toBe('0f86');
      expect(r.plan.spec.readEntry[0]).toBe(readAt + 10);
    });
  });

  it('stripped (-s -w): the same offsets, from .gopclntab and the table', () => {
    const peers = goPeers();
    const full = withElf(peers.gotls, inspectGoBinary);
    const stripped = withElf(peers.gotlsStripped, (elf) => {
      expect(elf.symbols('symtab')).toEqual([]);
      expect(elf.debugSection('.debug_info')).toBeUndefined();
      return inspectGoBinary(elf);
    });
    expect(stripped.kind).toBe('ok');
    if (stripped.kind !== 'ok' || full.kind !== 'ok') return;
    expect(stripped.plan).toMatchObject({ symbolsFrom: 'pclntab', offsetsFrom: 'table' });
    expect(stripped.plan.layout).toEqual(full.plan.layout);
  });

  for (const which of ['gotls', 'gotlsOld', 'gogrpc'] as const) {
    it(`${which}: .gopclntab names and places every function as .symtab does`, () => {
      withElf(goPeers()[which], (elf) => {
        const fromTable = allFunctions(elf);
        // a name can stand for two symbols (an ABI0 and an ABIInternal body): match by address
        // assembly functions carry an `.abi0` suffix in .symtab only, and .symtab writes `·` as `.`
        const syms = new Map(
          elf.symbols('symtab').map((s) => [`${s.name.replace(/\.abi0$/, '')}@${s.value}`, s]),
        );
        expect(fromTable.length).toBeGreaterThan(3000);
        for (const f of fromTable) {
          const s = syms.get(`${f.name.replaceAll('·', '.')}@${f.entry}`);
          expect(s, `${f.name} at 0x${f.entry.toString(16)} in .symtab`).toBeDefined();
          expect(f.end, f.name).toBeGreaterThanOrEqual(s!.value + s!.size); // padding after a function
        }
        const two = findFunctions(elf, [GO_TLS_READ, GO_TLS_WRITE]);
        expect([...two.keys()].sort()).toEqual([GO_TLS_READ, GO_TLS_WRITE]);
        // the return sites found from either source are the same
        for (const f of two.values()) {
          const s = syms.get(`${f.name}@${f.entry}`)!;
          expect(returnOffsets(elf.readAt(f.entry, s.size))).toEqual(
            returnOffsets(elf.readAt(f.entry, f.end - f.entry)),
          );
        }
      });
    });

    it(`${which}: the layout read from its DWARF is the table's row for its release`, () => {
      withElf(goPeers()[which], (elf) => {
        const layout = layoutFromDwarf(structOffsets(elf, LAYOUT_STRUCTS, (n) => n === 'runtime'));
        expect(layout).not.toHaveProperty('missing');
        expect(layout).toEqual(layoutFromTable(readBuildInfo(elf)!.release!));
      });
    });
  }

  it('the reasons a Go binary cannot be probed', () => {
    const peers = goPeers();
    const patched = (from: string, name: string, edit: (b: Buffer) => void): string => {
      const p = join(dir, name);
      copyFileSync(from, p);
      const b = readFileSync(p);
      edit(b);
      writeFileSync(p, b);
      return p;
    };
    const version = withElf(peers.gotlsStripped, (elf) => readBuildInfo(elf)!.version);
    const withVersion = (name: string, v: string): string => {
      const p = join(dir, name);
      copyWithGoVersion(peers.gotlsStripped, p, v + version.slice(v.length));
      return p;
    };
    // an unknown release without DWARF
    const future = withVersion('future', 'go1.99.');
    expect(withElf(future, inspectGoBinary)).toEqual({
      kind: 'unsupported',
      goVersion: expect.stringMatching(/^go1\.99\./),
      reason: expect.stringMatching(
        /^no DWARF, and the offset table \(Go 1\.18 to 1\.26\) has no row for go1\.99/,
      ),
    });
    // the stack ABI of Go 1.16 and older
    const old = withVersion('old', 'go1.16.');
    expect(withElf(old, inspectGoBinary)).toMatchObject({
      kind: 'unsupported',
      reason: expect.stringMatching(/passes arguments on the stack; Go 1\.17 or newer/),
    });
    // another architecture (e_machine of arm64)
    const arm = patched(peers.gotlsStripped, 'arm', (b) => b.writeUInt16LE(183, 0x12));
    expect(withElf(arm, inspectGoBinary)).toMatchObject({
      kind: 'unsupported',
      reason: 'Go TLS capture supports amd64 only (this binary is arm64)',
    });
    // Read's code replaced by bytes that do not decode
    const r = withElf(peers.gotlsStripped, inspectGoBinary);
    if (r.kind !== 'ok') throw new Error('stripped peer not probeable');
    const garbled = patched(peers.gotlsStripped, 'garbled', (b) =>
      b.fill(0x06, r.plan.spec.readEntry[0]!, r.plan.spec.readEntry[0]! + 8),
    );
    expect(withElf(garbled, inspectGoBinary)).toMatchObject({
      kind: 'unsupported',
      reason: expect.stringMatching(
        /^cannot decode crypto\/tls\.\(\*Conn\)\.Read: at \+0x[0-9a-f]+: opcode 6 is not valid/,
      ),
    });
  });
});
