/**
 * bitsandbytes' code tables, transcribed from its source (bitsandbytes 0.4x: functional.py
 * `get_4bit_type`, `create_dynamic_map`; csrc/kernels.cu `dQuantizeNF4`, `dQuantizeFP4`,
 * `dQuantize`). bitsandbytes cannot be installed here; tools/fixtures/make_quant.py re-implements
 * the same algorithms in numpy/torch and test/quant/formats.test.ts holds these to it.
 */

/** NF4: the 16 quantiles of N(0, 1) normalised to [-1, 1] (get_4bit_type('nf4')); code i ↦ NF4[i]. */
export const NF4 = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

/** FP4 (e2m1, bias 3, bitsandbytes' own layout): get_4bit_type('fp4') / 12; bit 3 is the sign. */
export const FP4 = Float32Array.from([0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3].map((v) => v / 12));

/**
 * dQuantizeNF4's decision tree, flattened: x maps to the number of these pivots it exceeds
 * (strictly), i.e. the code of the nearest table value, a tie going to the lower one. The pivots
 * are the kernel's float literals (midpoints of adjacent NF4 values).
 */
const NF4_PIVOTS = Float32Array.from([
  -0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544, -0.23460740596055984,
  -0.13791173323988914, -0.045525018125772476, 0.03979014977812767, 0.1202552504837513, 0.2035212516784668,
  0.2920137718319893, 0.3893125355243683, 0.5016634166240692, 0.6427869200706482, 0.8614784181118011,
]);

/** dQuantizeFP4's pivots on |x| in the order of increasing magnitude, with the code each range gets. */
const FP4_PIVOTS = Float32Array.from([0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333]);
const FP4_BY_RANK = [0b0000, 0b0001, 0b0110, 0b0111, 0b0100, 0b0101, 0b0010, 0b0011];

/** dQuantizeNF4(x) for x already scaled by 1/absmax; NaN gives code 0, as the kernel's tree. */
export function quantizeNf4(x: number): number {
  let q = 0;
  for (let i = 0; i < 15; i++) if (x > NF4_PIVOTS[i]) q++;
  return q;
}

/** dQuantizeFP4(x): sign bit 8 for x < 0, then the magnitude's code. */
export function quantizeFp4(x: number): number {
  const sign = x < 0 ? 0b1000 : 0;
  const a = Math.abs(x);
  let r = 0;
  for (let i = 0; i < 7; i++) if (a > FP4_PIVOTS[i]) r++;
  return FP4_BY_RANK[r] + sign;
}

/**
 * torch.linspace(start, end, steps, dtype=float32) on an x86-64 CPU: start + step·i (end − step·(steps−1−i)
 * past the middle) with one rounding, as its vectorised path computes them with FMA (checked
 * against torch by test/quant/formats.test.ts).
 */
function linspaceF32(start: number, end: number, steps: number): Float32Array {
  const f = Math.fround;
  const s = f(start), e = f(end);
  const step = f(f(e - s) / (steps - 1));
  const out = new Float32Array(steps);
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = i < half ? f(s + step * i) : f(e - step * (steps - i - 1));
  return out;
}

/**
 * create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): the 256 sorted values of
 * bitsandbytes' 8-bit dynamic data type, used for the nested quantization of 4-bit absmax.
 */
function dynamicMap(): Float32Array {
  const f = Math.fround;
  const data: number[] = [];
  const maxExp = 7, nonSign = 7;
  for (let i = 0; i < maxExp; i++) {
    const b = linspaceF32(0.1, 1, 2 ** (i + nonSign - maxExp) + 1);
    const scale = f(10 ** (-(maxExp - 1) + i));
    for (let j = 0; j + 1 < b.length; j++) {
      const mean = f(f(b[j] + b[j + 1]) / 2);
      data.push(f(scale * mean), f(-scale * mean));
    }
  }
  data.push(0, 1);
  data.sort((x, y) => x - y);
  return Float32Array.from(data);
}

/** bitsandbytes' signed 8-bit dynamic map (256 values, ascending). */
export const DYNAMIC8 = dynamicMap();

/** dQuantize<0>(code, x): the kernel's binary search with round-to-nearest between neighbours. */
export function quantizeDynamic8(x: number, code: Float32Array = DYNAMIC8): number {
  let pivot = 127, upperPivot = 255, lowerPivot = 0;
  let lower = -1, upper = 1;
  let val = code[pivot];
  for (let i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lowerPivot = pivot;
      lower = val;
      pivot += i;
    } else {
      upperPivot = pivot;
      upper = val;
      pivot -= i;
    }
    val = code[pivot];
  }
  if (upperPivot === 255) upper = code[upperPivot];
  if (lowerPivot === 0) lower = code[lowerPivot];
  if (x > val) return x > Math.fround((upper + val) * 0.5) ? upperPivot : pivot;
  return x < Math.fround((lower + val) * 0.5) ? lowerPivot : pivot;
}
