/** A fixture's TRL loss arguments (snake_case) as our validated LossConfig. */
import { lossConfig, type LossConfig } from '../../src/dpo/losses.js';

export const camel = (k: string): string => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

export function cfgOf(args: Record<string, unknown>): LossConfig {
  return lossConfig(Object.fromEntries(Object.entries(args).map(([k, v]) => [camel(k), v])) as Partial<LossConfig>);
}
