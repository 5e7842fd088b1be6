/** The HTML report renders in a real headless browser (Debian chromium) and its charts carry data. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeReport, svgChart } from '../../src/report/html-report.js';
import { Progress, fmtDuration } from '../../src/report/progress.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

function history(n: number): Record<string, number>[] {
  return Array.from({ length: n }, (_, i) => ({
    loss: 0.69 - i * 0.05, grad_norm: 1 / (i + 1), learning_rate: 1e-4, 'rewards/chosen': i * 0.1, 'rewards/rejected': -i * 0.1,
    'rewards/accuracies': Math.min(1, i / 5), 'rewards/margins': i * 0.2, 'logps/chosen': -10 + i, 'logps/rejected': -10 - i, epoch: i / n, step: i + 1,
  }));
}

test('report charts: one path per series with every logged point; empty history says so', () => {
  const svg = svgChart({ title: 'Rewards', series: [{ key: 'rewards/chosen', label: 'c', color: '#000' }, { key: 'rewards/rejected', label: 'r', color: '#f00' }] }, history(9));
  assert.equal((svg.match(/class="series"/g) ?? []).length, 2);
  assert.match(svg, /data-points="9"/);
  assert.equal(svgChart({ title: 'x', series: [{ key: 'nope', label: 'n', color: '#000' }] }, history(3)), '');
});

test('report.html renders in headless chromium with data in every chart', { skip: CHROMIUM ? false : 'chromium not installed (apt-get install chromium)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-report-'));
  const file = join(dir, 'report.html');
  writeReport(file, { title: 'test run', history: history(12), settings: { beta: 0.1, model: 'tiny <llama>' } });
  const html = readFileSync(file, 'utf8');
  assert.ok(!/https?:\/\//.test(html.replaceAll('http://www.w3.org/2000/svg', '')), 'the report must not reference the network');
  const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${join(dir, 'profile')}`];
  const dom = spawnSync(CHROMIUM!, [...flags, '--dump-dom', `file://${file}`], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(dom.status, 0, dom.stderr);
  const charts = dom.stdout.match(/<figure class="chart">/g) ?? [];
  assert.equal(charts.length, 7, 'loss, rewards, margin, accuracy, log-probs, learning rate, grad norm');
  const points = [...dom.stdout.matchAll(/data-points="(\d+)"/g)].map((m) => Number(m[1]));
  assert.ok(points.length >= 7 && points.every((p) => p === 12), `points per series: ${points}`);
  assert.match(dom.stdout, /tiny &lt;llama&gt;/);
  const shot = spawnSync(CHROMIUM!, [...flags, `--screenshot=${join(dir, 'report.png')}`, '--window-size=1200,1600', `file://${file}`], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(shot.status, 0, shot.stderr);
  assert.ok(readFileSync(join(dir, 'report.png')).length > 10_000, 'screenshot is not blank');
});

test('progress line: count/total, elapsed<ETA, tokens/s, latest metrics', () => {
  const chunks: string[] = [];
  const stream = { isTTY: false, write: (s: string) => chunks.push(s) } as unknown as NodeJS.WriteStream;
  const p = new Progress({ label: 'train', total: 4, stream });
  p.update(1, { tokens: 100, extra: 'loss 0.6931 acc 0.50' });
  p.update(4, { tokens: 300, extra: 'loss 0.5 acc 1.00' });
  assert.equal(chunks.length, 2);
  assert.match(chunks[0], /^train 1\/4 \d\d:\d\d<\d\d:\d\d( \d+ tok\/s)? loss 0\.6931 acc 0\.50\n$/);
  assert.equal(fmtDuration(3725), '1:02:05');
});

test('plain progress: the first update, a line each time the count crosses a multiple of plainEvery, the last once', () => {
  const chunks: string[] = [];
  const stream = { isTTY: false, write: (s: string) => chunks.push(s) } as unknown as NodeJS.WriteStream;
  const p = new Progress({ label: 'tokenizing train', total: 30, stream, plainEvery: 10 });
  for (const c of [3, 12, 13, 25, 30, 30]) p.update(c);
  p.done();
  assert.deepEqual(chunks.map((c) => c.split(' ')[2]), ['3/30', '12/30', '25/30', '30/30']);
});
