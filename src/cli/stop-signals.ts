/**
 * Stop signals during training: SIGINT (Ctrl-C), SIGTERM (kill, docker stop, timeout, a scheduler's
 * preemption) and SIGHUP (the terminal closed) all ask the trainer to stop after its current step
 * and save a checkpoint; the command then exits with 128 + the signal's number (130, 143, 129), as
 * a shell reports a run a signal ended, so a script can tell an interrupted run from a finished one.
 * A second signal quits at once, without a checkpoint.
 *
 * @example
 * const watch = watchStopSignals((sig) => { trainer.stopRequested = true; });
 * try { await trainer.train(); } finally { watch.release(); }
 */
import { constants } from 'node:os';
import { DpoError } from '../errors.js';

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP. */
export function signalExitCode(sig: StopSignal): number {
  return 128 + constants.signals[sig];
}

/** A run stopped by a signal: the CLI prints the one-line message (with the resume hint) and exits 128 + n. */
export class InterruptedError extends DpoError {
  readonly signal: StopSignal;
  constructor(message: string, signal: StopSignal) {
    super(message, signalExitCode(signal));
    this.name = 'InterruptedError';
    this.signal = signal;
  }
}

export interface StopSignalWatch {
  /** The first stop signal seen, or null. */
  readonly signal: StopSignal | null;
  /** Stops listening (idempotent): the signals' default action, ending the process, applies again. */
  release(): void;
}

/**
 * Calls `onFirst` on the first SIGINT / SIGTERM / SIGHUP. Node runs handlers only between turns of
 * the event loop, so training must yield between steps for this to be seen within one step.
 */
export function watchStopSignals(onFirst: (sig: StopSignal) => void, stream: NodeJS.WritableStream = process.stderr): StopSignalWatch {
  let first: StopSignal | null = null;
  let listening = true;
  const release = () => {
    if (!listening) return;
    listening = false;
    for (const s of STOP_SIGNALS) process.off(s, handler);
  };
  function handler(sig: NodeJS.Signals): void {
    const s = sig as StopSignal;
    if (first) {
      // A second signal delivered together with the first (both queued during one step).
      stream.write(`\n${s} again: quitting at once, no checkpoint written\n`);
      process.exit(signalExitCode(s));
    }
    first = s;
    onFirst(s);
    // From the next turn on, a further signal takes its default action and ends the process at once,
    // even inside a step or a checkpoint write, which run synchronously and would hold back any
    // handler; a checkpoint is written to a temp dir and renamed, so none is left half-written.
    // Deferred so a second signal already queued behind this one still reaches the handler above.
    setImmediate(release);
  }
  for (const s of STOP_SIGNALS) process.on(s, handler);
  return {
    get signal() {
      return first;
    },
    release,
  };
}
