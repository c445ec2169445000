// Static checks: strict tsc, prettier, rustfmt, and cargo clippy where it is installed.
// Fails on the first problem; a missing optional tool is reported and skipped.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function run(label, cmd, args, { optional = false } = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error && r.error.code === 'ENOENT' && optional) {
    console.log(`check: ${label} skipped (${cmd} not installed)`);
    return;
  }
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
run('rustfmt', 'rustfmt', ['--check', '--edition', '2021', 'crate/src/lib.rs'], { optional: true });
if (available('cargo', ['clippy', '--version'])) {
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
} else {
  console.log('check: cargo clippy skipped (not installed)');
}
