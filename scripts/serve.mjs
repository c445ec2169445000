// A small static file server for the demo and the browser tests: maps URL prefixes to
// directories, serves .wasm as application/wasm (for streaming compilation), never caches,
// and listens on 127.0.0.1 only.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** The file a URL path maps to, or null when no mount matches or it escapes its directory. */
function locate(mounts, pathname) {
  let path;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  // Longest prefix first, so '/dist/' wins over '/'.
  const prefixes = Object.keys(mounts).sort((a, b) => b.length - a.length);
  const prefix = prefixes.find((p) => path.startsWith(p));
  if (prefix === undefined) return null;
  const root = resolve(mounts[prefix]);
  const file = resolve(join(root, path.slice(prefix.length)));
  return file === root || file.startsWith(root + sep) ? file : null;
}

async function respond(mounts, req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  const { pathname } = new URL(req.url ?? '/', 'http://localhost');
  let file = locate(mounts, pathname);
  let info = file ? await stat(file).catch(() => null) : null;
  if (file && info?.isDirectory()) {
    file = join(file, 'index.html');
    info = await stat(file).catch(() => null);
  }
  if (!file || !info?.isFile()) {
    res
      .writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
      .end(`not found: ${pathname}\n`);
    return;
  }
  res.writeHead(200, {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': info.size,
    'cache-control': 'no-store',
    // Cross-origin isolation, so pages get SharedArrayBuffer (nabla's threads in a Worker).
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-embedder-policy': 'require-corp',
  });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
}

/**
 * Serves `mounts` ({ '/dist/': 'path/to/dist', '/': 'path/to/site' }) on 127.0.0.1:`port`
 * (0 picks a free port). Resolves once listening, with the base URL and a `close` function.
 */
export function serveStatic(mounts, { port = 0 } = {}) {
  const server = createServer((req, res) => {
    respond(mounts, req, res).catch((e) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(e));
    });
  });
  return new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      const { port: actual } = server.address();
      resolveListen({
        url: `http://127.0.0.1:${actual}`,
        port: actual,
        close: () =>
          new Promise((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
