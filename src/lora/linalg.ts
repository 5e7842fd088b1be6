/**
 * Float64 dense linear algebra for the LoRA initialisations that read the base weight:
 * a thin SVD (one-sided Jacobi, PiSSA) and a reduced QR (Householder with LAPACK's sign
 * convention, OLoRA). Matrices are row-major (rows, cols). Signs of singular vector pairs are
 * arbitrary (as in LAPACK); PiSSA's B·A does not depend on them.
 */

export interface Svd {
  /** (m, k) left singular vectors, row-major, k = min(m, n). */
  u: Float64Array;
  /** (k) singular values, descending. */
  s: Float64Array;
  /** (k, n) right singular vectors (Vᵀ), row-major. */
  vt: Float64Array;
  k: number;
}

/** Thin SVD of the row-major (m, n) matrix a: a = u · diag(s) · vt. */
export function svd(a: ArrayLike<number>, m: number, n: number): Svd {
  // Orthogonalise the k = min(m, n) columns of a (n ≤ m) or of aᵀ (n > m) by plane rotations.
  const t = n > m;
  const k = Math.min(m, n);
  const len = t ? n : m;
  const cols: Float64Array[] = [];
  for (let j = 0; j < k; j++) {
    const c = new Float64Array(len);
    for (let i = 0; i < len; i++) c[i] = t ? a[j * n + i] : a[i * n + j];
    cols.push(c);
  }
  const rot: Float64Array[] = Array.from({ length: k }, (_, j) => {
    const e = new Float64Array(k);
    e[j] = 1;
    return e;
  });
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < k - 1; p++) {
      for (let q = p + 1; q < k; q++) {
        const x = cols[p];
        const y = cols[q];
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let i = 0; i < len; i++) {
          alpha += x[i] * x[i];
          beta += y[i] * y[i];
          gamma += x[i] * y[i];
        }
        if (gamma === 0 || Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) continue;
        off = Math.max(off, Math.abs(gamma) / Math.sqrt(alpha * beta));
        const zeta = (beta - alpha) / (2 * gamma);
        const tt = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + tt * tt);
        const s = c * tt;
        for (let i = 0; i < len; i++) {
          const xi = x[i];
          x[i] = c * xi - s * y[i];
          y[i] = s * xi + c * y[i];
        }
        const rp = rot[p];
        const rq = rot[q];
        for (let i = 0; i < k; i++) {
          const v = rp[i];
          rp[i] = c * v - s * rq[i];
          rq[i] = s * v + c * rq[i];
        }
      }
    }
    if (off < 1e-13) break; // orthogonal to far below float32 rounding
  }
  // Column j of the rotated matrix = σ_j · (left vector of the orthogonalised side); rot[j] = the other side's vector.
  const norms = cols.map((c) => Math.sqrt(c.reduce((acc, v) => acc + v * v, 0)));
  const order = norms.map((_, j) => j).sort((x, y) => norms[y] - norms[x]);
  const u = new Float64Array(m * k);
  const vt = new Float64Array(k * n);
  const s = new Float64Array(k);
  order.forEach((j, r) => {
    s[r] = norms[j];
    const inv = norms[j] > 0 ? 1 / norms[j] : 0;
    if (!t) {
      for (let i = 0; i < m; i++) u[i * k + r] = cols[j][i] * inv;
      for (let i = 0; i < n; i++) vt[r * n + i] = rot[j][i];
    } else {
      for (let i = 0; i < n; i++) vt[r * n + i] = cols[j][i] * inv;
      for (let i = 0; i < m; i++) u[i * k + r] = rot[j][i];
    }
  });
  return { u, s, vt, k };
}

/** Reduced QR of the row-major (m, n) matrix a: q (m, k), r (k, n), k = min(m, n), as LAPACK's geqrf/orgqr. */
export function qr(a: ArrayLike<number>, m: number, n: number): { q: Float64Array; r: Float64Array; k: number } {
  const k = Math.min(m, n);
  const w = Float64Array.from(a as ArrayLike<number>);
  const vs: Float64Array[] = [];
  const taus: number[] = [];
  for (let j = 0; j < k; j++) {
    // dlarfg: H = I − τ·v·vᵀ with v[0] = 1 sends column j (rows j..) to β·e₁, β = −sign(α)·‖x‖.
    const alpha = w[j * n + j];
    let xnorm = 0;
    for (let i = j + 1; i < m; i++) xnorm += w[i * n + j] ** 2;
    xnorm = Math.sqrt(xnorm);
    const v = new Float64Array(m - j);
    v[0] = 1;
    if (xnorm === 0) {
      vs.push(v);
      taus.push(0);
      continue;
    }
    const beta = -Math.sign(alpha || 1) * Math.hypot(alpha, xnorm);
    const tau = (beta - alpha) / beta;
    for (let i = j + 1; i < m; i++) v[i - j] = w[i * n + j] / (alpha - beta);
    // Apply H to columns j.. of w.
    for (let c = j; c < n; c++) {
      let d = 0;
      for (let i = j; i < m; i++) d += v[i - j] * w[i * n + c];
      d *= tau;
      for (let i = j; i < m; i++) w[i * n + c] -= d * v[i - j];
    }
    vs.push(v);
    taus.push(tau);
  }
  const r = new Float64Array(k * n);
  for (let i = 0; i < k; i++) for (let c = i; c < n; c++) r[i * n + c] = w[i * n + c];
  // Q = H₀·H₁·…·H_{k−1} applied to the first k columns of the identity.
  const q = new Float64Array(m * k);
  for (let i = 0; i < k; i++) q[i * k + i] = 1;
  for (let j = k - 1; j >= 0; j--) {
    const v = vs[j];
    const tau = taus[j];
    if (!tau) continue;
    for (let c = 0; c < k; c++) {
      let d = 0;
      for (let i = j; i < m; i++) d += v[i - j] * q[i * k + c];
      d *= tau;
      for (let i = j; i < m; i++) q[i * k + c] -= d * v[i - j];
    }
  }
  return { q, r, k };
}
