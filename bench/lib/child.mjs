// Runs one workload of one library in its own process, so memory peaks and JIT state stay
// per library and per workload; the child writes its result as JSON to a file.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ATTENTION_WORKLOADS } from './attention.mjs';

const here = new URL('..', import.meta.url).pathname;

/** Node 20 validates relaxed SIMD only behind this flag (Node 22+ by default). */
const RELAXED_FLAG = ['--experimental-wasm-relaxed-simd'];

/** `torch`, or `torch-2t` (say): the torch scripts take their thread count from the name. */
const isTorch = (library) => /^torch(-\d+t)?$/.test(library);

/** The command that runs `library`'s child entry point for `workload`. */
export function entryFor(library, python, workload) {
  const node = (file) => [
    process.execPath,
    [...(library === 'nabla-relaxed' ? RELAXED_FLAG : []), join(here, file)],
  ];
  if (ATTENTION_WORKLOADS.includes(workload)) {
    if (isTorch(library)) return [python, [join(here, 'torch_attention.py')]];
    return node('workloads/attention.mjs');
  }
  if (/^nabla(-relaxed|-winograd|-\d+t)?$/.test(library)) return node('workloads/nabla.mjs');
  if (library.startsWith('tfjs-')) return [process.execPath, [join(here, 'workloads/tfjs.mjs')]];
  if (isTorch(library)) return [python, [join(here, 'torch_bench.py')]];
  throw new Error(`unknown library ${library}`);
}

/** Resolves to `{result, seconds}` or `{error, seconds}`; never rejects. */
export function runWorkload({ library, workload, configPath, resultPath, python, timeoutMs }) {
  const [cmd, pre] = entryFor(library, python, workload);
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, [...pre, library, workload, configPath, resultPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (d) => (output = (output + d).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const done = (error) => {
      clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      if (error) resolve({ error, seconds });
      else resolve({ result: JSON.parse(readFileSync(resultPath, 'utf8')), seconds });
    };
    child.on('error', (e) => done(`${cmd}: ${e.message}`));
    child.on('close', (code, signal) => {
      if (code === 0 && existsSync(resultPath)) return done(null);
      const why = signal ? `killed by ${signal} (timeout ${timeoutMs / 1000} s?)` : `exit ${code}`;
      done(`${library} ${workload}: ${why}\n${output.trim()}`);
    });
  });
}
