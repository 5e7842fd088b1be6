/**
 * A user-facing error: one line saying what went wrong, where, and how to fix it.
 * The CLI prints only `message` (and the stack with `--debug`) and exits with `exitCode`.
 */
export class DpoError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = 'DpoError';
    this.exitCode = exitCode;
  }
}

/** An error in how an op was called (shape or dtype mismatch): names the op and the shapes. */
export class ShapeError extends DpoError {
  constructor(op: string, detail: string) {
    super(`${op}: ${detail}`);
    this.name = 'ShapeError';
  }
}

/** Formats a shape the way error messages show it: [2, 3, 4]. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
