/**
 * The report of iterative runs: held-out metrics per round and the reward–KL frontier (held-out
 * score against KL(π‖π_0), one curve per β, as Fig. 2 of the DPO paper), above the usual training
 * curves (steps continue across rounds).
 */
import { svgChart, writeReport, type ChartSpec } from './html-report.js';
import type { RoundRecord } from '../dpo/iterative.js';

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#7c3aed', '#ea580c', '#0891b2', '#db2777', '#475569'];

export interface RoundsReport {
  title: string;
  /** Records of each run, by β. */
  runs: { beta: number; records: RoundRecord[] }[];
  /** Training log of one run (iterativeHistory), for the step curves. */
  history: Record<string, number>[];
  settings: Record<string, unknown>;
  /** Extra per-round keys to plot besides the held-out score and win-rate (e.g. the demo's greedy accuracy). */
  extraKeys?: { key: string; label: string }[];
  summary?: Record<string, unknown>;
}

export function roundsSections(r: RoundsReport): string {
  const entries: Record<string, number>[] = [];
  const perRound: ChartSpec['series'] = [];
  const frontier: ChartSpec['series'] = [];
  const keys = [{ key: 'heldout_score', label: 'held-out score' }, { key: 'heldout_win_rate', label: 'win-rate vs start' }, ...(r.extraKeys ?? [])];
  r.runs.forEach((run, i) => {
    const tag = r.runs.length > 1 ? ` β=${run.beta}` : '';
    keys.forEach((k, j) => perRound.push({ key: `${k.key}@${i}`, label: `${k.label}${tag}`, color: COLORS[(i * keys.length + j) % COLORS.length] }));
    frontier.push({ key: `frontier@${i}`, label: `β=${run.beta}`, color: COLORS[i % COLORS.length] });
    for (const rec of run.records) {
      const e: Record<string, number> = { round: rec.round };
      for (const k of keys) if (typeof rec[k.key] === 'number') e[`${k.key}@${i}`] = rec[k.key] as number;
      if (typeof rec.heldout_kl === 'number' && typeof rec.heldout_score === 'number') {
        e.kl = rec.heldout_kl;
        e[`frontier@${i}`] = rec.heldout_score;
      }
      entries.push(e);
    }
  });
  const charts = [
    svgChart({ title: 'Held-out, per round (round 0 = the starting model)', series: perRound, xKey: 'round', xLabel: 'round' }, entries),
    // Each run's points in round order: its curve walks out along the frontier.
    svgChart({ title: 'Reward–KL frontier: held-out score vs KL(π‖π₀)', series: frontier, xKey: 'kl', xLabel: 'KL(π‖π₀), nats per sequence' }, entries),
  ].filter(Boolean);
  const rows = r.runs.flatMap((run) => run.records.map((rec) => `<tr><td>${run.beta}</td><td>${rec.round}</td><td>${rec.pairs}</td><td>${rec.steps}</td>${['heldout_score', 'heldout_win_rate', 'heldout_kl', ...(r.extraKeys ?? []).map((k) => k.key)].map((k) => `<td>${typeof rec[k] === 'number' ? (rec[k] as number).toFixed(4) : '-'}</td>`).join('')}</tr>`));
  const head = ['β', 'round', 'pairs', 'steps', 'held-out score', 'win-rate', 'KL', ...(r.extraKeys ?? []).map((k) => k.label)].map((h) => `<th>${h}</th>`).join('');
  return `<h2>Rounds</h2><div class="charts">${charts.join('\n')}</div><table><tr>${head}</tr>${rows.join('')}</table>`;
}

export function writeRoundsReport(path: string, r: RoundsReport): void {
  writeReport(path, { title: r.title, history: r.history, settings: r.settings, summary: r.summary, sections: roundsSections(r) });
}
