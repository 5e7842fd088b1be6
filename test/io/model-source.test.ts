import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DpoError } from '../../src/errors.js';
import { hubCacheDirs, parseModelId, resolveModelDir, resolveModelSource } from '../../src/io/model-source.js';
import { tempDir } from './helpers.js';

const root = tempDir();
const home = join(root, 'home');
mkdirSync(home);

/** A fake huggingface_hub cache entry: refs and snapshots (each with config.json unless told). */
function fakeRepo(cache: string, id: string, snaps: Record<string, boolean>, refs: Record<string, string> = {}): string {
  const repo = join(cache, `models--${id.replace('/', '--')}`);
  for (const [sha, withConfig] of Object.entries(snaps)) {
    mkdirSync(join(repo, 'snapshots', sha), { recursive: true });
    if (withConfig) writeFileSync(join(repo, 'snapshots', sha, 'config.json'), '{}');
  }
  for (const [ref, sha] of Object.entries(refs)) {
    mkdirSync(join(repo, 'refs', ref, '..'), { recursive: true });
    writeFileSync(join(repo, 'refs', ref), `${sha}\n`);
  }
  return repo;
}

const hfHome = join(root, 'hf-home');
const hub = join(hfHome, 'hub');
const env = { HOME: home, HF_HOME: hfHome };

test('cache roots in huggingface_hub order', () => {
  assert.deepEqual(hubCacheDirs({ HOME: home }), [join(home, '.cache', 'huggingface', 'hub')]);
  assert.deepEqual(hubCacheDirs({ HOME: home, HF_HUB_CACHE: '/a', HF_HOME: '/b', XDG_CACHE_HOME: '/c' }), ['/a', '/b/hub', '/c/huggingface/hub', join(home, '.cache', 'huggingface', 'hub')]);
});

test('model ids: org/name, a bare legacy name, @revision; paths are not ids', () => {
  assert.deepEqual(parseModelId('Qwen/Qwen3-0.6B'), { repoId: 'Qwen/Qwen3-0.6B', revision: null });
  assert.deepEqual(parseModelId('gpt2@main'), { repoId: 'gpt2', revision: 'main' });
  assert.deepEqual(parseModelId('org/name@v1.0'), { repoId: 'org/name', revision: 'v1.0' });
  assert.equal(parseModelId('a/b/c'), null);
  assert.equal(parseModelId('org/../x'), null);
  assert.equal(parseModelId('org/name@../../etc'), null);
});

test('resolves org/name from $HF_HOME/hub via refs/main', () => {
  fakeRepo(hub, 'org/tiny', { aaa111: true, bbb222: true }, { main: 'bbb222', v1: 'aaa111' });
  const s = resolveModelSource('org/tiny', env);
  assert.deepEqual(s, { dir: join(hub, 'models--org--tiny', 'snapshots', 'bbb222'), kind: 'hf-cache', repoId: 'org/tiny', revision: 'main', commit: 'bbb222' });
  assert.equal(resolveModelDir('org/tiny@v1', env), join(hub, 'models--org--tiny', 'snapshots', 'aaa111'), 'a branch or tag ref');
  assert.equal(resolveModelDir('org/tiny@aaa111', env), join(hub, 'models--org--tiny', 'snapshots', 'aaa111'), 'a commit');
  assert.throws(() => resolveModelDir('org/tiny@v9', env), /has no snapshot for revision "v9"/);
});

test('$HF_HUB_CACHE comes first; ~/.cache/huggingface/hub is the default', () => {
  const other = join(root, 'hub-cache');
  fakeRepo(other, 'org/tiny', { ccc333: true }, { main: 'ccc333' });
  assert.equal(resolveModelDir('org/tiny', { ...env, HF_HUB_CACHE: other }), join(other, 'models--org--tiny', 'snapshots', 'ccc333'));
  const dflt = join(home, '.cache', 'huggingface', 'hub');
  fakeRepo(dflt, 'gpt2', { ddd444: true }, { main: 'ddd444' });
  assert.equal(resolveModelDir('gpt2', { HOME: home }), join(dflt, 'models--gpt2', 'snapshots', 'ddd444'));
});

test('without refs/main: the only snapshot, else the newest', () => {
  fakeRepo(hub, 'org/one', { only1: true });
  assert.equal(resolveModelDir('org/one', env), join(hub, 'models--org--one', 'snapshots', 'only1'));
  const repo = fakeRepo(hub, 'org/two', { old: true, new: true });
  utimesSync(join(repo, 'snapshots', 'old'), new Date(2000, 1, 1), new Date(2000, 1, 1));
  utimesSync(join(repo, 'snapshots', 'new'), new Date(2020, 1, 1), new Date(2020, 1, 1));
  assert.equal(resolveModelDir('org/two', env), join(repo, 'snapshots', 'new'));
});

test('not found: the error lists every place looked and says downloads are impossible', () => {
  let msg = '';
  assert.throws(() => resolveModelDir('org/absent', { ...env, HF_HUB_CACHE: join(root, 'hc') }), (e: unknown) => {
    assert.ok(e instanceof DpoError);
    msg = e.message;
    return true;
  });
  for (const where of [join(process.cwd(), 'org/absent'), join(root, 'hc', 'models--org--absent'), join(hub, 'models--org--absent'), join(home, '.cache', 'huggingface', 'hub', 'models--org--absent')]) {
    assert.ok(msg.includes(where), `${msg} mentions ${where}`);
  }
  assert.match(msg, /Downloads are not possible here: pass a local model directory/);
  assert.ok(!msg.includes('\n'));
  fakeRepo(hub, 'org/partial', { eee555: false }, { main: 'eee555' });
  assert.throws(() => resolveModelDir('org/partial', env), /snapshots\/eee555 has no config\.json \(incomplete download\?\)/);
});

test('local directories: used as they are, and must hold config.json', () => {
  const d = join(root, 'local-model');
  mkdirSync(d);
  assert.throws(() => resolveModelDir(d, env), /local-model: no config\.json in this directory/);
  writeFileSync(join(d, 'config.json'), '{}');
  assert.deepEqual(resolveModelSource(d, env), { dir: d, kind: 'local' });
  assert.throws(() => resolveModelDir(join(d, 'config.json'), env), /config\.json: is a file; pass the model directory/);
  mkdirSync(join(home, 'm'));
  writeFileSync(join(home, 'm', 'config.json'), '{}');
  assert.equal(resolveModelDir('~/m', env), join(home, 'm'));
});
