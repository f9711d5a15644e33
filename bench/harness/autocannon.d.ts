// The part of autocannon 9's Node API that the server benchmark uses (the package ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  namespace autocannon {
    interface Request {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
      /** Called before each request is sent: returns it, changed (a new body, say). */
      setupRequest?: (req: Request, context: Record<string, unknown>) => Request;
      /** Called with each response, its body as a string. */
      onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string>) => void;
    }
    interface Options {
      url: string;
      connections?: number;
      /** Seconds. */
      duration?: number;
      /** Seconds without a response before the request counts as a timeout (and the connection is remade). */
      timeout?: number;
      pipelining?: number;
      requests?: Request[];
      /** Latencies of 2xx answers only. */
      excludeErrorStats?: boolean;
    }
    /** Milliseconds (latency) or counts per second (requests), percentiles as pN with '_' for '.'. */
    interface Histogram {
      average: number;
      mean: number;
      stddev: number;
      min: number;
      max: number;
      p50: number;
      p90: number;
      p97_5: number;
      p99: number;
      total: number;
      totalCount?: number;
      sent?: number;
    }
    interface Result {
      /** Seconds from the first request to the last tick of the run. */
      duration: number;
      /** Connection errors and timeouts. */
      errors: number;
      timeouts: number;
      mismatches: number;
      non2xx: number;
      resets: number;
      '2xx': number;
      statusCodeStats: Record<string, { count: number }>;
      latency: Histogram;
      requests: Histogram;
    }
    interface Instance extends EventEmitter, Promise<Result> {
      stop(): void;
    }
  }
  function autocannon(options: autocannon.Options): autocannon.Instance;
  export = autocannon;
}
