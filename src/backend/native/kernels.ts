// PLACEHOLDER — replaced by the native backend implementation.
import type { Backend } from '../types.js';
export type NativeAddon = Record<string, unknown>;
export function makeNativeBackend(_addon: NativeAddon): Backend {
  throw new Error('native backend not implemented yet');
}
