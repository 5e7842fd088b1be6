/**
 * A self-contained HTML report of a run (no scripts, no network): inline SVG line charts of the
 * logged metrics and a table of the run's settings. Opened from output_dir/report.html.
 */
import { writeFileSync } from 'node:fs';

type Entry = Record<string, number>;

export interface ChartSpec {
  title: string;
  series: { key: string; label: string; color: string }[];
  /** The x-axis' key and label (default: step). */
  xKey?: string;
  xLabel?: string;
}

export const DEFAULT_CHARTS: ChartSpec[] = [
  { title: 'Loss', series: [{ key: 'loss', label: 'train loss', color: '#2563eb' }, { key: 'eval_loss', label: 'eval loss', color: '#dc2626' }] },
  { title: 'Rewards', series: [{ key: 'rewards/chosen', label: 'chosen', color: '#16a34a' }, { key: 'rewards/rejected', label: 'rejected', color: '#dc2626' }] },
  { title: 'Reward margin', series: [{ key: 'rewards/margins', label: 'margin', color: '#7c3aed' }, { key: 'eval_rewards/margins', label: 'eval margin', color: '#db2777' }] },
  { title: 'Reward accuracy', series: [{ key: 'rewards/accuracies', label: 'train', color: '#0891b2' }, { key: 'eval_rewards/accuracies', label: 'eval', color: '#ea580c' }] },
  { title: 'Log-probs', series: [{ key: 'logps/chosen', label: 'chosen', color: '#16a34a' }, { key: 'logps/rejected', label: 'rejected', color: '#dc2626' }] },
  { title: 'Learning rate', series: [{ key: 'learning_rate', label: 'lr', color: '#475569' }] },
  { title: 'Gradient norm', series: [{ key: 'grad_norm', label: 'grad norm', color: '#b45309' }] },
];

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : Number(v.toPrecision(4)).toString();
}

/** [min, max] by a loop: a long run's log history is too long to spread into Math.min. */
function extent(v: readonly number[]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const x of v) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return [lo, hi];
}

/** One SVG line chart; returns '' when no series has data. */
export function svgChart(spec: ChartSpec, history: Entry[]): string {
  const W = 460, H = 240, L = 60, R = 12, T = 28, Bm = 36;
  const xk = spec.xKey ?? 'step';
  const lines = spec.series
    .map((s) => ({ ...s, pts: history.filter((e) => Number.isFinite(e[s.key]) && Number.isFinite(e[xk])).map((e) => [e[xk], e[s.key]] as const) }))
    .filter((s) => s.pts.length > 0);
  if (!lines.length) return '';
  const xs = lines.flatMap((s) => s.pts.map((p) => p[0]));
  const ys = lines.flatMap((s) => s.pts.map((p) => p[1]));
  let [x0, x1] = extent(xs);
  let [y0, y1] = extent(ys);
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
  const px = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y: number) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - Bm);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => y0 + f * (y1 - y0));
  const grid = ticks.map((v) => `<line x1="${L}" x2="${W - R}" y1="${py(v)}" y2="${py(v)}" stroke="#e5e7eb"/><text x="${L - 6}" y="${py(v) + 4}" text-anchor="end" font-size="10" fill="#6b7280">${fmt(v)}</text>`).join('');
  const xt = [x0, (x0 + x1) / 2, x1].map((v) => `<text x="${px(v)}" y="${H - Bm + 16}" text-anchor="middle" font-size="10" fill="#6b7280">${fmt(Math.round(v * 100) / 100)}</text>`).join('');
  const paths = lines.map((s) => {
    const d = s.pts.map((p, i) => `${i ? 'L' : 'M'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ');
    const dots = s.pts.length <= 60 ? s.pts.map((p) => `<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="2.2" fill="${s.color}"/>`).join('') : '';
    return `<path class="series" data-key="${esc(s.key)}" data-points="${s.pts.length}" d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"/>${dots}`;
  }).join('');
  const legend = lines.map((s, i) => `<rect x="${L + i * 120}" y="8" width="10" height="10" fill="${s.color}"/><text x="${L + 14 + i * 120}" y="17" font-size="11">${esc(s.label)}</text>`).join('');
  return `<figure class="chart"><figcaption>${esc(spec.title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(spec.title)}">${grid}${xt}<text x="${(L + W - R) / 2}" y="${H - 4}" text-anchor="middle" font-size="10" fill="#6b7280">${esc(spec.xLabel ?? 'step')}</text>${legend}${paths}</svg></figure>`;
}

export function renderReport(p: { title: string; history: Entry[]; settings: Record<string, unknown>; summary?: Record<string, unknown>; notes?: string[]; sections?: string }): string {
  const charts = DEFAULT_CHARTS.map((c) => svgChart(c, p.history)).filter(Boolean).join('\n');
  const row = ([k, v]: [string, unknown]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'string' ? v : JSON.stringify(v))}</td></tr>`;
  const settings = Object.entries(p.settings).filter(([, v]) => v !== undefined).map(row).join('');
  const summary = p.summary ? `<h2>Summary</h2><table>${Object.entries(p.summary).map(row).join('')}</table>` : '';
  const notes = p.notes?.length ? `<h2>Notes</h2><ul>${p.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(p.title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#111827}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{margin:0;border:1px solid #e5e7eb;border-radius:6px;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}table{border-collapse:collapse}th,td{text-align:left;padding:3px 10px;border-bottom:1px solid #f3f4f6;font-family:ui-monospace,monospace;font-size:12px}</style>
</head><body><h1>${esc(p.title)}</h1>${summary}${p.sections ?? ''}<h2>Curves</h2><div class="charts">${charts || '<p>No logged steps yet.</p>'}</div>${notes}<h2>Settings</h2><table>${settings}</table></body></html>
`;
}

export function writeReport(path: string, p: Parameters<typeof renderReport>[0]): void {
  writeFileSync(path, renderReport(p));
}
