// Types for serve.mjs, which the browser tests import.
export interface StaticServer {
  /** `http://127.0.0.1:<port>`, without a trailing slash. */
  url: string;
  port: number;
  close(): Promise<void>;
}

export function serveStatic(
  mounts: Record<string, string>,
  options?: { port?: number },
): Promise<StaticServer>;
