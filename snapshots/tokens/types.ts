/** Typed shape of tokens.yaml entries (contract: snapshots/schema/tokens.schema.json). */

export type TokenKind = 'jwt' | 'session' | 'csrf' | 'uuid' | 'id' | 'timestamp' | 'nonce' | 'signature' | 'opaque' | `x-${string}`;

export interface TokenLocation {
  exchange: string;
  in?: 'request' | 'response';
  /** `header:NAME`, `cookie:NAME`, `query:NAME`, `path:N`, `jsonpath:$.a.b`, `form:NAME`, `body`. */
  where: string;
}

export interface TokenEntry {
  id: string;
  kind?: TokenKind;
  placeholder?: string;
  origin?: TokenLocation;
  uses?: TokenLocation[];
  confidence?: number;
  rule?: string;
  route?: string;
  session?: string;
  volatile?: boolean;
  format?: string;
  count?: number;
  jwt?: { alg?: string; claims?: string[]; iat?: number; exp?: number; nbf?: number };
}
