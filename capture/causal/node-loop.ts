/**
 * Where node's event loop is probed, so capture knows which request a callback works for
 * (capture/causal/context.ts, async context).
 *
 * One thread runs every callback. The read that starts a socket's callback says whose callback it
 * is, but a callback started by anything else (a timer, setImmediate, a thread-pool completion such
 * as the getaddrinfo behind `http.get({ host: 'localhost' })`) would inherit whatever request the
 * thread read last: a wrong link. So:
 *   - TURN sites, where libuv starts a callback (each ready descriptor's handler, each loop phase,
 *     each thread-pool completion, each handle's close): the thread works for nobody from there,
 *     until a read says otherwise;
 *   - REQ_START at `uv_getaddrinfo(loop, req, …)` and `uv_tcp_connect(req, …)`: the request was
 *     started by the thread's current context;
 *   - REQ_DONE at the completion callbacks node registers for them (`req` is their 1st argument):
 *     the callback resumes the context that started it — the connect after a lookup, and the next
 *     address tried after a refused connect (node's autoSelectFamily), are that request's.
 * The sites are functions libuv and node only ever call through function pointers, so the compiler
 * cannot have inlined them; they are found by name in the executable's symbol table (node's release
 * builds keep it). Without the symbols there is no plan: node's calls are then left to time windows.
 */
import type { ElfFile } from '../elf.js';
import { LOOP_REQ_DONE, LOOP_REQ_START, LOOP_REQ_START1, LOOP_TURN } from '../events.js';

export interface LoopSite {
  /** File offset (what the uprobe is attached at). */
  offset: number;
  kind: number;
  /** The function, for the log. */
  name: string;
}

export type LoopPlan = { sites: LoopSite[] } | { reason: string };

/** Callback starts: every descriptor handler, loop phase and thread-pool completion libuv has on Linux. */
const TURNS_REQUIRED = [
  'uv__stream_io',
  'uv__server_io',
  'uv__async_io',
  'uv__run_timers',
  'uv__run_check',
  'uv__work_done',
  'uv__getaddrinfo_done',
];
const TURNS_OPTIONAL = [
  'uv__udp_io',
  'uv__poll_io',
  'uv__signal_event',
  'uv__inotify_read',
  'uv__run_prepare',
  'uv__fs_done',
  'uv__queue_done',
  'uv__getnameinfo_done',
  'uv__random_done',
];
/** node's close callback of every handle (a socket's 'close' runs from it). */
const ON_CLOSE = /^_ZN4node10HandleWrap7OnCloseEP11uv_handle_s$/;
/** The getaddrinfo completion node passes to libuv: the request wrapper, else the callback itself. */
const GAI_DONE = [
  /^_ZN4node24MakeLibuvRequestCallbackI16uv_getaddrinfo_s.*7Wrapper/,
  /AfterGetAddrInfoEP16uv_getaddrinfo_siP8addrinfo$/,
];
/** The connect completion node passes to libuv (optional: without it a retried address has no context). */
const CONNECT_DONE = /^_ZN4node24MakeLibuvRequestCallbackI12uv_connect_s.*7Wrapper/;

const STT_FUNC = 2;

/** The sites of a node executable, or why there are none. */
export function planNodeLoop(elf: ElfFile): LoopPlan {
  const names = new Set([...TURNS_REQUIRED, ...TURNS_OPTIONAL]);
  const found = new Map<string, number>();
  const gai: Array<number | undefined> = GAI_DONE.map(() => undefined);
  let onClose: number | undefined;
  let connectDone: number | undefined;
  const want = (n: string): boolean =>
    names.has(n) ||
    (n.startsWith('_ZN4node') &&
      (ON_CLOSE.test(n) || CONNECT_DONE.test(n) || GAI_DONE.some((r) => r.test(n))));
  for (const s of elf.symbols('symtab', want)) {
    if (!s.defined || !s.value || s.type !== STT_FUNC) continue;
    if (names.has(s.name)) found.set(s.name, s.value);
    else if (ON_CLOSE.test(s.name)) onClose = s.value;
    else if (CONNECT_DONE.test(s.name)) connectDone = s.value;
    else
      GAI_DONE.forEach((r, i) => {
        if (r.test(s.name)) gai[i] ??= s.value;
      });
  }
  for (const s of elf.symbols('dynsym', (n) => n === 'uv_getaddrinfo' || n === 'uv_tcp_connect'))
    if (s.defined && s.value && s.type === STT_FUNC) found.set(s.name, s.value);
  const missing = [...TURNS_REQUIRED, 'uv_getaddrinfo'].filter((n) => !found.has(n));
  const done = gai.find((v) => v !== undefined);
  if (done === undefined) missing.push('the getaddrinfo completion callback');
  if (missing.length > 0) {
    const why = elf.section('.symtab')
      ? `no ${missing.join(', ')} in its symbol table`
      : 'no symbol table (stripped)';
    return { reason: why };
  }
  const sites: LoopSite[] = [];
  const add = (name: string, vaddr: number, kind: number): void => {
    const offset = elf.fileOffset(vaddr);
    if (offset !== undefined) sites.push({ offset, kind, name });
  };
  const connect = found.get('uv_tcp_connect');
  found.delete('uv_tcp_connect');
  for (const [name, vaddr] of found) add(name, vaddr, name === 'uv_getaddrinfo' ? LOOP_REQ_START : LOOP_TURN);
  if (onClose !== undefined) add('node::HandleWrap::OnClose', onClose, LOOP_TURN);
  add('getaddrinfo completion', done!, LOOP_REQ_DONE);
  if (connect !== undefined && connectDone !== undefined) {
    add('uv_tcp_connect', connect, LOOP_REQ_START1);
    add('connect completion', connectDone, LOOP_REQ_DONE);
  }
  const expected =
    found.size +
    1 +
    (onClose !== undefined ? 1 : 0) +
    (connect !== undefined && connectDone !== undefined ? 2 : 0);
  if (sites.length !== expected) return { reason: 'a site lies outside the file image' };
  return { sites };
}

/** A node executable, by the name it runs under (as capture/causal/runtime.ts decides). */
export function isNodeExecutable(path: string): boolean {
  const base =
    path
      .replace(/ \(deleted\)$/, '')
      .split('/')
      .pop() ?? '';
  return /^(node|nodejs)(\d+)?$/.test(base);
}
