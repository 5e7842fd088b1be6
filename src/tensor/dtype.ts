/** Storage element types. float64 exists for finite-difference gradient checks on the ref backend. */
export type DType = 'float32' | 'float64';
export type Storage = Float32Array | Float64Array;

export function storageDType(s: Storage): DType {
  return s instanceof Float64Array ? 'float64' : 'float32';
}
