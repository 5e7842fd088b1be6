// Builds the native oneDNN core at install time. A failed build is not fatal: the library then
// runs on the TypeScript reference backend and says so once at start-up.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.env.DPO_SKIP_NATIVE === '1') process.exit(0);
if (!existsSync(join(root, 'native', 'binding.gyp'))) process.exit(0);
const gyp = process.platform === 'win32' ? 'node-gyp.cmd' : 'node-gyp';
const local = join(root, 'node_modules', '.bin', gyp);
const r = spawnSync(existsSync(local) ? local : gyp, ['rebuild', '--directory', 'native'], {
  cwd: root, stdio: 'inherit', env: process.env,
});
if (r.status !== 0) {
  console.warn('dpo: the native core did not build (is libdnnl-dev installed? `apt-get install libdnnl-dev`); ' +
    'the slower TypeScript backend will be used. Rebuild with `npm run build:native`.');
  if (process.env.DPO_REQUIRE_NATIVE === '1') process.exit(1);
}
