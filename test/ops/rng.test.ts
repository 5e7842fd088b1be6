/** The seeded generator: xoshiro128** reference outputs, range, and exact resume from a saved state. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/tensor/rng.js';

test('xoshiro128** matches the reference sequence from state (1, 2, 3, 4)', () => {
  const r = new Rng(0);
  r.setState([1, 2, 3, 4]);
  // Reference outputs of Blackman & Vigna's xoshiro128starstar.c from s = {1, 2, 3, 4}.
  const got = Array.from({ length: 6 }, () => r.nextU32());
  assert.deepEqual(got, [11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
});

test('nextFloat lies in [0, 1), seeds differ, and a saved state resumes exactly', () => {
  const a = new Rng(42);
  let lo = 1, hi = 0, sum = 0;
  for (let i = 0; i < 10000; i++) {
    const x = a.nextFloat();
    assert.ok(x >= 0 && x < 1);
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
    sum += x;
  }
  assert.ok(lo < 0.001 && hi > 0.999 && Math.abs(sum / 10000 - 0.5) < 0.02);
  assert.notEqual(new Rng(1).nextU32(), new Rng(2).nextU32());
  const state = a.getState();
  assert.deepEqual(JSON.parse(JSON.stringify(state)), state, 'state is plain JSON');
  const next = Array.from({ length: 5 }, () => a.nextFloat());
  const b = new Rng(7);
  b.setState(state);
  assert.deepEqual(Array.from({ length: 5 }, () => b.nextFloat()), next);
});

test('permutation is a permutation, reproducible by seed', () => {
  const p = new Rng(3).permutation(50);
  assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(new Rng(3).permutation(50), p);
});
