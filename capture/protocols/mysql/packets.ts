/**
 * MySQL/MariaDB wire details: capability flags, column types, length-encoded integers and strings,
 * and binary-protocol values (COM_STMT_EXECUTE parameters, binary result rows).
 */
import { bytesValue, type DbValue } from '../../../core/db.js';

export const CAP = {
  CONNECT_WITH_DB: 8,
  PROTOCOL_41: 512,
  SSL: 2048,
  SECURE_CONNECTION: 1 << 15,
  MULTI_STATEMENTS: 1 << 16,
  MULTI_RESULTS: 1 << 17,
  PS_MULTI_RESULTS: 1 << 18,
  PLUGIN_AUTH: 1 << 19,
  CONNECT_ATTRS: 1 << 20,
  PLUGIN_AUTH_LENENC: 1 << 21,
  SESSION_TRACK: 1 << 23,
  DEPRECATE_EOF: 1 << 24,
  QUERY_ATTRIBUTES: 1 << 27,
} as const;

export const SERVER_MORE_RESULTS_EXISTS = 0x0008;

export const COM: Record<number, string> = {
  1: 'COM_QUIT',
  2: 'COM_INIT_DB',
  3: 'COM_QUERY',
  4: 'COM_FIELD_LIST',
  9: 'COM_STATISTICS',
  14: 'COM_PING',
  17: 'COM_CHANGE_USER',
  22: 'COM_STMT_PREPARE',
  23: 'COM_STMT_EXECUTE',
  24: 'COM_STMT_SEND_LONG_DATA',
  25: 'COM_STMT_CLOSE',
  26: 'COM_STMT_RESET',
  27: 'COM_SET_OPTION',
  28: 'COM_STMT_FETCH',
  31: 'COM_RESET_CONNECTION',
};

export const TYPE_NAMES: Record<number, string> = {
  0: 'DECIMAL',
  1: 'TINY',
  2: 'SHORT',
  3: 'LONG',
  4: 'FLOAT',
  5: 'DOUBLE',
  6: 'NULL',
  7: 'TIMESTAMP',
  8: 'LONGLONG',
  9: 'INT24',
  10: 'DATE',
  11: 'TIME',
  12: 'DATETIME',
  13: 'YEAR',
  15: 'VARCHAR',
  16: 'BIT',
  245: 'JSON',
  246: 'NEWDECIMAL',
  247: 'ENUM',
  248: 'SET',
  249: 'TINY_BLOB',
  250: 'MEDIUM_BLOB',
  251: 'LONG_BLOB',
  252: 'BLOB',
  253: 'VAR_STRING',
  254: 'STRING',
  255: 'GEOMETRY',
};

/** A length-encoded integer at `i`: [value, bytes used]; value -1 for the NULL marker 0xfb. */
export function lenenc(b: Buffer, i: number): [number, number] {
  const c = b[i]!;
  if (c < 0xfb) return [c, 1];
  if (c === 0xfb) return [-1, 1];
  if (c === 0xfc) return [b.readUInt16LE(i + 1), 3];
  if (c === 0xfd) return [b.readUIntLE(i + 1, 3), 4];
  return [Number(b.readBigUInt64LE(i + 1)), 9];
}

export function writeLenenc(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n]);
  if (n < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = 0xfc;
    b.writeUInt16LE(n, 1);
    return b;
  }
  if (n < 0x1000000) {
    const b = Buffer.alloc(4);
    b[0] = 0xfd;
    b.writeUIntLE(n, 1, 3);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

export function lenencBytes(data: Buffer): Buffer {
  return Buffer.concat([writeLenenc(data.length), data]);
}

/** Bytes a binary value of `type` takes at `i` (including its own length prefix). */
export function binaryLength(b: Buffer, i: number, type: number): number {
  switch (type) {
    case 1:
      return 1;
    case 2:
    case 13:
      return 2;
    case 3:
    case 9:
    case 4:
      return 4;
    case 8:
    case 5:
      return 8;
    case 6:
      return 0;
    case 7:
    case 10:
    case 11:
    case 12:
      return 1 + b[i]!;
    default: {
      const [n, used] = lenenc(b, i);
      return used + Math.max(0, n);
    }
  }
}

/**
 * A binary-protocol value as JSON: integers as numbers (decimal text beyond 2^53), floats as
 * numbers, strings as text, dates/times/bits as the bytes after their length (base64).
 */
export function binaryValue(b: Buffer, i: number, type: number, unsigned: boolean): DbValue {
  switch (type) {
    case 1:
      return unsigned ? b.readUInt8(i) : b.readInt8(i);
    case 2:
    case 13:
      return unsigned ? b.readUInt16LE(i) : b.readInt16LE(i);
    case 3:
    case 9:
      return unsigned ? b.readUInt32LE(i) : b.readInt32LE(i);
    case 8: {
      const v = unsigned ? b.readBigUInt64LE(i) : b.readBigInt64LE(i);
      const n = Number(v);
      return Number.isSafeInteger(n) ? n : v.toString();
    }
    case 4:
      return b.readFloatLE(i);
    case 5:
      return b.readDoubleLE(i);
    case 6:
      return null;
    case 7:
    case 10:
    case 11:
    case 12:
      return { b64: b.toString('base64', i + 1, i + 1 + b[i]!) };
    default: {
      const [n, used] = lenenc(b, i);
      return bytesValue(b.subarray(i + used, i + used + Math.max(0, n)));
    }
  }
}

/** The binary encoding of a value of `type` (the inverse of binaryValue). */
export function encodeBinary(v: DbValue, type: number, unsigned: boolean): Buffer {
  const num = (): number => (typeof v === 'number' ? v : Number(typeof v === 'string' ? v : 0));
  switch (type) {
    case 1: {
      const b = Buffer.alloc(1);
      unsigned ? b.writeUInt8(num() & 0xff) : b.writeInt8(num());
      return b;
    }
    case 2:
    case 13: {
      const b = Buffer.alloc(2);
      unsigned ? b.writeUInt16LE(num()) : b.writeInt16LE(num());
      return b;
    }
    case 3:
    case 9: {
      const b = Buffer.alloc(4);
      unsigned ? b.writeUInt32LE(num()) : b.writeInt32LE(num());
      return b;
    }
    case 8: {
      const b = Buffer.alloc(8);
      const big = BigInt(typeof v === 'number' ? Math.trunc(v) : typeof v === 'string' ? v : 0);
      unsigned ? b.writeBigUInt64LE(big) : b.writeBigInt64LE(big);
      return b;
    }
    case 4: {
      const b = Buffer.alloc(4);
      b.writeFloatLE(num());
      return b;
    }
    case 5: {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(num());
      return b;
    }
    case 6:
      return Buffer.alloc(0);
    case 7:
    case 10:
    case 11:
    case 12: {
      const raw = v && typeof v === 'object' ? Buffer.from(v.b64, 'base64') : Buffer.alloc(0);
      return Buffer.concat([Buffer.from([raw.length]), raw]);
    }
    default: {
      const raw =
        v === null
          ? Buffer.alloc(0)
          : typeof v === 'object'
            ? Buffer.from(v.b64, 'base64')
            : Buffer.from(String(v), 'utf8');
      return lenencBytes(raw);
    }
  }
}
