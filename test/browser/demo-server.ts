// Starts scripts/demo.mjs as `npm run demo` does (after the build) on a free port and reads
// the address it prints.
import { spawn, type ChildProcess } from 'node:child_process';
import { root } from './harness.js';

export interface DemoServer {
  /** `http://127.0.0.1:<port>/`, with the trailing slash. */
  url: string;
  process: ChildProcess;
}

export function startDemo(): Promise<DemoServer> {
  const server = spawn(process.execPath, ['scripts/demo.mjs', '--port', '0'], { cwd: root });
  return new Promise((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /open (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) resolve({ url: m[1], process: server });
    });
    server.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    server.on('exit', (code) => reject(new Error(`demo server exited (${code}): ${out}`)));
  });
}
