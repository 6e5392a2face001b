/**
 * Content-Encoding decoding for comparison (gzip, x-gzip, deflate, br). Sync zlib with an output
 * cap; anything undecodable yields undefined, never an exception.
 */
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';

function decodeOne(coding: string, data: Uint8Array, maxOut: number): Uint8Array | undefined {
  const opts = { maxOutputLength: Math.max(1, maxOut) };
  try {
    switch (coding) {
      case 'gzip':
      case 'x-gzip':
        return gunzipSync(data, opts);
      case 'deflate':
        // RFC 9110 says zlib-wrapped; some servers send raw deflate.
        try {
          return inflateSync(data, opts);
        } catch {
          return inflateRawSync(data, opts);
        }
      case 'br':
        return brotliDecompressSync(data, opts);
      case 'identity':
      case '':
        return data;
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}

/**
 * Decodes a Content-Encoding list (`gzip`, `deflate, br`…), last applied first. Returns undefined
 * for identity or when any step fails or is unknown.
 */
export function decodeContent(
  encoding: string | undefined,
  data: Uint8Array,
  maxOut: number,
): Uint8Array | undefined {
  if (!encoding) return undefined;
  const codings = encoding
    .toLowerCase()
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return undefined;
  let out: Uint8Array | undefined = data;
  for (let i = codings.length - 1; i >= 0 && out; i--) out = decodeOne(codings[i]!, out, maxOut);
  return out;
}
