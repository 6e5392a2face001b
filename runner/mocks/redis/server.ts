/**
 * A Redis server that answers from the recording: RESP2, and RESP3 after a recorded HELLO 3;
 * pipelined commands answered in order; MULTI/EXEC as recorded (QUEUED, then the EXEC array);
 * (P|S)SUBSCRIBE answered with the recorded confirmations, followed by the messages the server
 * pushed on that connection after them. AUTH (and HELLO … AUTH) is accepted whatever the password.
 * A command is matched on its name and arguments; a miss is `-ERR retap mock: …` naming the nearest
 * recorded command.
 */
import type net from 'node:net';
import type { DbResp, DbValue } from '../../../core/db.js';
import { hidePasswords, redisKind } from '../../../capture/protocols/redis/decoder.js';
import { BAD, encodeResp, NEED, parseResp, respText } from '../../../capture/protocols/redis/resp.js';
import type { DbContext } from '../db/index.js';

export function serveRedis(socket: net.Socket, ctx: DbContext): void {
  let buf: Buffer = Buffer.alloc(0);
  const st = { need: 0 };
  let inTx = false;
  socket.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    const out: Buffer[] = [];
    let i = 0;
    while (i < buf.length) {
      let name: string;
      let args: DbValue[];
      if (buf[i] === 0x2a) {
        const r = parseResp(buf, i, buf.length, st);
        if (r === NEED) break;
        if (r === BAD || !Array.isArray(r.value)) {
          socket.end(Buffer.concat(encodeResp({ error: 'ERR Protocol error' })));
          return;
        }
        const parts = r.value as DbResp[];
        name = (respText(parts[0]) ?? '').toUpperCase();
        args = parts
          .slice(1)
          .map((p) =>
            typeof p === 'string' || typeof p === 'number' || p === null
              ? p
              : !Array.isArray(p) && 'b64' in p
                ? p
                : (respText(p) ?? ''),
          );
        i = r.next;
      } else {
        const nl = buf.indexOf(10, i);
        if (nl === -1) break;
        const words = buf.toString('utf8', i, nl).replace(/\r$/, '').trim().split(/\s+/);
        i = nl + 1;
        if (words[0] === '') continue;
        name = words[0]!.toUpperCase();
        args = words.slice(1);
      }
      for (const reply of answer(name, args)) encodeResp(reply, out);
      if (name === 'QUIT') {
        socket.end(Buffer.concat(out));
        buf = Buffer.alloc(0);
        return;
      }
    }
    buf = i >= buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(i));
    if (out.length) socket.write(Buffer.concat(out));
  });

  /** The replies to write: one, or one per channel for the subscribe family, then recorded pushes. */
  const answer = (name: string, rawArgs: DbValue[]): DbResp[] => {
    const args = hidePasswords(name, rawArgs);
    if (name === 'AUTH') {
      ctx.hooks.counted(true);
      return [{ simple: 'OK' }];
    }
    const kind = redisKind(name, args);
    const queued = inTx && name !== 'EXEC' && name !== 'DISCARD' && name !== 'MULTI';
    if (name === 'MULTI') inTx = true;
    if (name === 'EXEC' || name === 'DISCARD') inTx = false;
    const r = ctx.lookup(
      { kind: kind === 'setup' ? 'setup' : 'query', text: name, params: args, inTx: queued },
      name,
    );
    if (!r.entry) return [{ error: `ERR ${r.missMessage!.replace(/[\r\n]+/g, ' ')}` }];
    const reply = r.entry.call.reply ?? null;
    const replies = isSubscribe(name) && Array.isArray(reply) ? (reply as DbResp[]) : [reply];
    return [...replies, ...r.entry.pushes.map((p) => p.reply ?? null)];
  };
}

const isSubscribe = (name: string): boolean => /^(P|S)?(UN)?SUBSCRIBE$/.test(name);
