/**
 * How transformers' Trainer lays out a run: update steps per epoch, total steps, and which
 * micro-batches make up each optimizer step (the last group of an epoch may be short).
 */
export interface RunLayout {
  batchesPerEpoch: number;
  stepsPerEpoch: number;
  totalSteps: number;
  numEpochs: number;
}

export function runLayout(numPairs: number, batchSize: number, ga: number, epochs: number, maxSteps: number, dropLast: boolean): RunLayout {
  const batchesPerEpoch = dropLast ? Math.floor(numPairs / batchSize) : Math.ceil(numPairs / batchSize);
  const stepsPerEpoch = Math.max(Math.floor(batchesPerEpoch / ga) + (batchesPerEpoch % ga > 0 ? 1 : 0), 1);
  const totalSteps = maxSteps > 0 ? maxSteps : Math.ceil(epochs * stepsPerEpoch);
  const numEpochs = maxSteps > 0 ? Math.ceil(maxSteps / stepsPerEpoch) : Math.ceil(epochs);
  return { batchesPerEpoch, stepsPerEpoch, totalSteps, numEpochs };
}

/** Micro-batch indices (within the epoch) of update step `u` of an epoch. */
export function microBatchesOf(u: number, layout: RunLayout, ga: number): number[] {
  const start = u * ga;
  const end = Math.min(start + ga, layout.batchesPerEpoch);
  return Array.from({ length: end - start }, (_, i) => start + i);
}
