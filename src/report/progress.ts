/**
 * A progress bar for long work: count/total, elapsed, ETA, rate and the latest metrics on one
 * redrawn line on a TTY; on a non-TTY (CI, files) a plain line every `plainEvery` updates instead.
 */
export interface ProgressOptions {
  label: string;
  total: number;
  /** Unit of the rate, e.g. "tok/s" computed from `tokens`. */
  stream?: NodeJS.WriteStream;
  /** On a non-TTY, print every Nth update (and the last). */
  plainEvery?: number;
  quiet?: boolean;
}

export function fmtDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '--:--';
  s = Math.round(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class Progress {
  private readonly start = Date.now();
  private count = 0;
  private tokens = 0;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private lastDraw = 0;
  private lastPlain = -1;
  private printedDone = false;
  private extra = '';
  constructor(private readonly o: ProgressOptions) {
    this.stream = o.stream ?? process.stderr;
    this.tty = !!this.stream.isTTY;
  }

  /** Advances to `count` (absolute), adding `tokens` processed, with extra text (latest loss, accuracy). */
  update(count: number, p: { tokens?: number; extra?: string } = {}): void {
    this.count = count;
    this.tokens += p.tokens ?? 0;
    if (p.extra !== undefined) this.extra = p.extra;
    if (this.o.quiet) return;
    const done = count >= this.o.total;
    if (this.tty) {
      const now = Date.now();
      if (!done && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      this.stream.write(`\r\x1b[2K${this.line(true)}${done ? '\n' : ''}`);
    } else {
      // A line each time the count crosses a multiple of `every` (counts may jump), the last one once.
      const every = this.o.plainEvery ?? 1;
      if (done ? !this.printedDone : Math.floor(count / every) > Math.floor(this.lastPlain / every)) this.stream.write(`${this.line(false)}\n`);
      this.printedDone ||= done;
      this.lastPlain = count;
    }
  }

  line(bar: boolean): string {
    const { total, label } = this.o;
    const elapsed = (Date.now() - this.start) / 1000;
    const frac = total > 0 ? Math.min(1, this.count / total) : 0;
    const eta = this.count > 0 ? (elapsed / this.count) * (total - this.count) : NaN;
    const width = 24;
    const filled = Math.round(frac * width);
    const b = bar ? `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ` : '';
    const rate = this.tokens > 0 && elapsed > 0 ? ` ${Math.round(this.tokens / elapsed)} tok/s` : '';
    return `${label} ${b}${this.count}/${total} ${fmtDuration(elapsed)}<${fmtDuration(eta)}${rate}${this.extra ? ` ${this.extra}` : ''}`;
  }

  done(): void {
    if (this.count < this.o.total) this.update(this.o.total);
  }
}
