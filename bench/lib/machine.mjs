// What the numbers were measured on, and which nabla build: results are only comparable on
// the same machine and build, and load average hints at how noisy the run was.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';

function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

/** The CPU clock as /proc/cpuinfo reports it now (MHz, first core), or null. */
function cpuMHz() {
  try {
    const m = /^cpu MHz\s*:\s*([\d.]+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.speed || null;
}

export function machineInfo() {
  return {
    cpu: cpuModel(),
    cpuMHz: cpuMHz(),
    cores: os.availableParallelism?.() ?? os.cpus().length,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    totalMemoryBytes: os.totalmem(),
    loadAverageAtStart: os.loadavg(),
  };
}

/** The commit of the checkout the build came from, and whether its sources had local edits. */
function gitState(dir) {
  const git = (...args) => spawnSync('git', ['-C', dir, ...args], { encoding: 'utf8' });
  const head = git('rev-parse', 'HEAD');
  if (head.status !== 0) return { gitCommit: null };
  const dirty = git('status', '--porcelain', '--', 'crate', 'ts').stdout.trim() !== '';
  return { gitCommit: head.stdout.trim(), sourcesEdited: dirty };
}

/**
 * The commit of the checkout this harness runs from (the one whose bench code and build made
 * the figures), and whether its sources had uncommitted edits. Null outside a git checkout.
 */
export function repoState() {
  const dir = new URL('../..', import.meta.url).pathname;
  const git = (...args) => spawnSync('git', ['-C', dir, ...args], { encoding: 'utf8' });
  const head = git('rev-parse', 'HEAD');
  if (head.status !== 0) return { commit: null, dir, reason: 'not a git checkout' };
  const dirty = git('status', '--porcelain', '--', 'crate', 'ts', 'bench').stdout.trim() !== '';
  return { commit: head.stdout.trim(), dir, sourcesEdited: dirty };
}

/** The wasm core the children load, identified by hash and build time. */
export function nablaBuild() {
  const url = new URL('./nabla.wasm', import.meta.resolve('nabla'));
  let bytes;
  try {
    bytes = readFileSync(url);
  } catch (e) {
    // The nabla children will fail and say so; the report still records why.
    return { wasm: url.pathname, error: e.message };
  }
  return {
    wasm: url.pathname,
    ...gitState(new URL('..', url).pathname),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    bytes: bytes.length,
    builtAt: statSync(url).mtime.toISOString(),
  };
}
