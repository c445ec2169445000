// Static checks: strict tsc, prettier, rustfmt and cargo clippy (scripts/setup.sh installs
// them). Fails on the first problem, including a missing tool.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function run(label, cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`check: ${label} failed`);
    process.exit(1);
  }
  console.log(`check: ${label} ok`);
}

function available(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'ignore' });
  return !r.error && r.status === 0;
}

run('tsc --noEmit (strict)', 'npx', ['tsc', '-p', '.']);
run('prettier', 'npx', ['prettier', '--check', '--log-level', 'warn', '.']);
run('rustfmt', 'rustfmt', ['--check', '--edition', '2021', 'crate/src/lib.rs']);
if (!available('cargo', ['clippy', '--version'])) {
  console.error('check: cargo clippy is not installed (bash scripts/setup.sh installs it)');
  process.exit(1);
}
run('cargo clippy', 'cargo', [
  'clippy',
  '-q',
  '-p',
  'nabla-core',
  '--all-targets',
  '--',
  '-D',
  'warnings',
]);
