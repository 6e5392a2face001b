/**
 * Peer parsers measured in the same run. HTTP/1.1: Node's own llhttp through the internal
 * HTTPParser binding (the parser `http` uses), fed the same chunks, with callbacks that collect
 * headers and bodies so it does comparable work.
 */
import type { StreamEvent } from '../../../capture/protocols/collect.js';

interface ParserCtor {
  new (): {
    initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
    execute(data: Buffer): number | Error;
    finish(): void;
    close?(): void;
    [key: number]: unknown;
  };
  REQUEST: number;
  RESPONSE: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnHeaders: number;
}

/** The internal llhttp binding, or undefined when this Node does not expose it. */
export function llhttp(): ParserCtor | undefined {
  try {
    const binding = (process as unknown as { binding(name: string): { HTTPParser: ParserCtor } }).binding(
      'http_parser',
    );
    return binding.HTTPParser;
  } catch {
    return undefined;
  }
}

/** Parses both directions with llhttp; returns the number of messages completed. */
export function parseWithLlhttp(P: ParserCtor, events: StreamEvent[]): number {
  let messages = 0;
  const make = (type: number) => {
    const p = new P();
    let parts: Buffer[] = [];
    p[P.kOnHeadersComplete] = (..._args: unknown[]) => 0;
    p[P.kOnBody] = (b: Buffer) => {
      parts.push(Buffer.from(b));
    };
    p[P.kOnMessageComplete] = () => {
      Buffer.concat(parts);
      parts = [];
      messages++;
    };
    p.initialize(type, {}, 0, 0);
    return p;
  };
  const req = make(P.REQUEST);
  const res = make(P.RESPONSE);
  for (const e of events) {
    if (!('data' in e)) continue;
    (e.side === 'client' ? req : res).execute(e.data as Buffer);
  }
  req.finish();
  res.finish();
  return messages;
}
