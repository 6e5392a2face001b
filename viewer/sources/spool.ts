/**
 * An append-only JSON Lines file in a private temp directory, for sources whose exchanges do not
 * sit in a snapshot file (live capture, replay results). Lines are written synchronously so a row
 * is readable the moment it is indexed; the directory is removed on close.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export class Spool {
  readonly dir: string;
  readonly path: string;
  private fd: number;
  private offset = 0;

  constructor(prefix = 'retap-view-') {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    this.path = join(this.dir, 'exchanges.jsonl');
    this.fd = openSync(this.path, 'a', 0o600);
  }

  /** Appends one line (without its newline); returns where it starts and its length in bytes. */
  append(line: string): { offset: number; length: number } {
    const buf = Buffer.from(`${line}\n`, 'utf8');
    let done = 0;
    while (done < buf.length) done += writeSync(this.fd, buf, done, buf.length - done);
    const at = { offset: this.offset, length: buf.length - 1 };
    this.offset += buf.length;
    return at;
  }

  get bytes(): number {
    return this.offset;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
