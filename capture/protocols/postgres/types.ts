/**
 * PostgreSQL built-in type OIDs (pg_type.h) by name, and binary parameter values read as text for
 * the common ones, so the same parameter reads the same whether a driver sent it as text (psql,
 * JDBC, node-postgres) or binary (pgx).
 */
import { bytesValue, type DbValue } from '../../../core/db.js';

export const PG_TYPES: Record<number, string> = {
  16: 'bool',
  17: 'bytea',
  18: 'char',
  19: 'name',
  20: 'int8',
  21: 'int2',
  23: 'int4',
  24: 'regproc',
  25: 'text',
  26: 'oid',
  114: 'json',
  142: 'xml',
  650: 'cidr',
  700: 'float4',
  701: 'float8',
  790: 'money',
  829: 'macaddr',
  869: 'inet',
  1000: '_bool',
  1005: '_int2',
  1007: '_int4',
  1009: '_text',
  1014: '_bpchar',
  1015: '_varchar',
  1016: '_int8',
  1021: '_float4',
  1022: '_float8',
  1042: 'bpchar',
  1043: 'varchar',
  1082: 'date',
  1083: 'time',
  1114: 'timestamp',
  1184: 'timestamptz',
  1186: 'interval',
  1266: 'timetz',
  1560: 'bit',
  1562: 'varbit',
  1700: 'numeric',
  2249: 'record',
  2278: 'void',
  2950: 'uuid',
  3802: 'jsonb',
  3807: '_jsonb',
  2951: '_uuid',
};

export function pgTypeName(oid: number): string {
  return PG_TYPES[oid] ?? (oid === 0 ? 'unspecified' : `oid:${oid}`);
}

const PG_EPOCH_MS = Date.UTC(2000, 0, 1);

/** A binary-format value as the text PostgreSQL would print, for the common types; bytes otherwise. */
export function binaryParam(oid: number, b: Buffer): DbValue {
  try {
    switch (oid) {
      case 16:
        if (b.length === 1) return b[0] ? 't' : 'f';
        break;
      case 21:
        if (b.length === 2) return String(b.readInt16BE(0));
        break;
      case 23:
      case 26:
        if (b.length === 4) return String(oid === 26 ? b.readUInt32BE(0) : b.readInt32BE(0));
        break;
      case 20:
        if (b.length === 8) return b.readBigInt64BE(0).toString();
        break;
      case 700:
        if (b.length === 4) return String(b.readFloatBE(0));
        break;
      case 701:
        if (b.length === 8) return String(b.readDoubleBE(0));
        break;
      case 25:
      case 1043:
      case 1042:
      case 19:
      case 114:
        return b.toString('utf8');
      case 3802:
        if (b.length > 0 && b[0] === 1) return b.toString('utf8', 1);
        break;
      case 2950:
        if (b.length === 16) {
          const h = b.toString('hex');
          return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
        }
        break;
      case 1114:
      case 1184:
        if (b.length === 8) {
          const us = b.readBigInt64BE(0);
          const ms = Number(us / 1000n);
          const rest = Number(us % 1000n);
          const iso = new Date(PG_EPOCH_MS + ms).toISOString().replace('T', ' ').replace('Z', '');
          return `${iso}${rest ? String(Math.abs(rest)).padStart(3, '0') : ''}${oid === 1184 ? '+00' : ''}`;
        }
        break;
      case 1082:
        if (b.length === 4)
          return new Date(PG_EPOCH_MS + b.readInt32BE(0) * 86400000).toISOString().slice(0, 10);
        break;
    }
  } catch {
    /* fall through to bytes */
  }
  return bytesValue(b);
}
