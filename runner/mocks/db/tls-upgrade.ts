/**
 * Turns a database mock's plaintext socket into a server-side TLS one in the middle of the
 * protocol (PostgreSQL's SSLRequest, MySQL's SSLRequest packet).
 *
 * A MySQL client does not wait for an answer to its SSLRequest: its ClientHello can arrive in the
 * same read as the request. Those bytes were already taken off the socket, so a TLSSocket laid on
 * the socket itself would never see them and the handshake would hang. When `head` holds such
 * bytes, TLS reads from a small stream that hands them over first and then the socket's own data.
 */
import type net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

export interface CertPair {
  cert: string | Buffer;
  key: string | Buffer;
}

export function upgradeToTls(socket: net.Socket, pair: CertPair, head: Buffer): tls.TLSSocket {
  const options = { isServer: true, cert: pair.cert, key: pair.key };
  if (head.length === 0) return new tls.TLSSocket(socket, options);
  const inner = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, done) {
      socket.write(chunk, (err) => done(err ?? null));
    },
    final(done) {
      socket.end(() => done());
    },
    destroy(err, done) {
      socket.destroy(err ?? undefined);
      done(err);
    },
  });
  inner.push(head);
  socket.on('data', (d: Buffer) => {
    if (!inner.push(d)) socket.pause();
  });
  socket.on('end', () => inner.push(null));
  socket.on('close', () => inner.destroy());
  socket.on('error', (err) => inner.destroy(err));
  return new tls.TLSSocket(inner, options);
}
