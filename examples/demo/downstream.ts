/**
 * JSON calls from `orders` to its dependencies, over keep-alive agents like a real service.
 * HTTPS trust comes from the process's CA store (NODE_EXTRA_CA_CERTS), never from code.
 */
import http from 'node:http';
import https from 'node:https';

export const DOWNSTREAM_TIMEOUT_MS = 5_000;
const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface Downstream {
  /** Base URL without a trailing slash, e.g. `http://localhost:4001`. */
  base: URL;
  agent: http.Agent;
}

export interface JsonAnswer {
  status: number;
  body: Record<string, unknown>;
}

export function downstream(envName: string, value: string | undefined): Downstream {
  if (!value)
    throw new Error(`${envName} is not set (the base URL of the dependency, e.g. http://localhost:4001)`);
  let base: URL;
  try {
    base = new URL(value);
  } catch {
    throw new Error(`${envName}='${value}' is not a URL`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new Error(`${envName}='${value}' must be an http:// or https:// URL`);
  }
  const options = { keepAlive: true, maxSockets: 16, maxFreeSockets: 4, timeout: DOWNSTREAM_TIMEOUT_MS };
  const agent = base.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
  return { base, agent };
}

export function callJson(dep: Downstream, method: string, path: string, body?: unknown): Promise<JsonAnswer> {
  const url = new URL(path, dep.base);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent: dep.agent,
        timeout: DOWNSTREAM_TIMEOUT_MS,
        headers: {
          accept: 'application/json',
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new Error(`${method} ${url.href}: answer larger than ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = {};
          try {
            parsed = text ? JSON.parse(text) : {};
          } catch {
            reject(new Error(`${method} ${url.href}: answer is not JSON`));
            return;
          }
          const status = res.statusCode ?? 0;
          resolve({ status, body: (parsed ?? {}) as Record<string, unknown> });
        });
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`${method} ${url.href}: no answer in ${DOWNSTREAM_TIMEOUT_MS} ms`)),
    );
    req.on('error', reject);
    req.end(payload);
  });
}
