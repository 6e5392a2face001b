/**
 * One live status line on a TTY (rewritten in place); on a pipe or in CI, a line every few
 * seconds at most, so logs stay readable.
 */
export class Progress {
  private last = 0;
  private shown = false;
  private readonly tty: boolean;

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = stream.isTTY === true && process.env.CI !== 'true';
  }

  update(text: string): void {
    const now = Date.now();
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${this.label}: ${text}`);
      this.shown = true;
    } else if (now - this.last >= 5000) {
      this.stream.write(`${this.label}: ${text}\n`);
    }
    this.last = now;
  }

  done(): void {
    if (this.tty && this.shown) this.stream.write('\r\x1b[2K');
    this.shown = false;
  }
}
