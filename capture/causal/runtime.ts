/**
 * How a captured process runs its requests, which decides how its calls can be linked
 * (capture/causal/context.ts): node runs every request on one event loop (async context), a Go
 * program moves goroutines between threads (a thread says nothing about the request: without the
 * runtime's goroutine probes its calls are left to time windows, labelled so), and everything
 * else is taken as thread-per-request until a thread is seen serving two requests at once.
 *
 * Decided once per executable from /proc/<pid>/exe: node by its name, Go by the sections its
 * linker always writes (.go.buildinfo, .gopclntab; stripped binaries keep them).
 */
import { readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { ElfFile } from '../elf.js';
import type { Runtime } from './context.js';

const byExe = new Map<string, Runtime>();
const MAX_CACHED = 1024;

export function runtimeOfProcess(tgid: number): Runtime {
  let exe: string;
  try {
    exe = readlinkSync(`/proc/${tgid}/exe`);
  } catch {
    return 'threads'; // gone, or not ours to read: the multiplexing check still guards the links
  }
  const known = byExe.get(exe);
  if (known) return known;
  const rt = inspect(tgid, exe);
  if (byExe.size >= MAX_CACHED) byExe.delete(byExe.keys().next().value!);
  byExe.set(exe, rt);
  return rt;
}

function inspect(tgid: number, exe: string): Runtime {
  if (/^(node|nodejs)(\d+)?$/.test(basename(exe.replace(/ \(deleted\)$/, '')))) return 'node';
  let elf: ElfFile | undefined;
  try {
    elf = ElfFile.open(`/proc/${tgid}/exe`);
    if (elf.section('.go.buildinfo') || elf.section('.gopclntab')) return 'go-unprobed';
  } catch {
    // not an ELF we can read: threads
  } finally {
    elf?.close();
  }
  return 'threads';
}
