// npm run bench:serve — `rnnlm serve` under load (bench/harness/serve.ts): requests/s, tokens/s,
// latency, errors and the server's RSS at 1, 16, 64 and 256 connections on /v1/next and
// /v1/completions, batching on and off; a table on stdout, the report as JSON (default
// bench/results/serve-cpu-2core.json; `npm run bench:render` puts it in the README).
//   --duration S (30), --warmup S (3), --connections 1,16,64,256, --endpoints /v1/next,/v1/completions,
//   --batching on,off, --device cpu|cuda|auto (cpu), --quick (tiny model, 2 s runs, 1 and 16
//   connections; writes no JSON unless --json), --json FILE, --server-node-args="--cpu-prof ..." (flags for each
//   server's node)
// Exits 1 if a run failed (a server crashed, or did not exit 0 on SIGTERM); targets missed are figures, not failures.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchMain, seconds } from './harness/main';
import { SERVE_ENDPOINTS, type Endpoint } from './harness/serve';
import { runServeBench } from './harness/serve-run';

function options() {
  const { values: v } = parseArgs({
    options: {
      duration: { type: 'string' }, warmup: { type: 'string' }, connections: { type: 'string' }, endpoints: { type: 'string' },
      batching: { type: 'string' }, device: { type: 'string' }, quick: { type: 'boolean' }, json: { type: 'string' },
      'server-node-args': { type: 'string' },
    },
    strict: true,
  });
  const list = (x?: string) => x?.split(',').map((s) => s.trim()).filter(Boolean);
  const connections = list(v.connections)?.map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--connections takes counts >= 1 (got ${s})`);
    return n;
  });
  const endpoints = list(v.endpoints);
  for (const e of endpoints ?? []) if (!(SERVE_ENDPOINTS as readonly string[]).includes(e)) throw new Error(`--endpoints: ${e} is not one of ${SERVE_ENDPOINTS.join(', ')}`);
  const batching = list(v.batching)?.map((s) => {
    if (s !== 'on' && s !== 'off') throw new Error(`--batching takes on and/or off (got ${s})`);
    return s === 'on';
  });
  if (v.device !== undefined && !['cpu', 'cuda', 'auto'].includes(v.device)) throw new Error(`--device must be cpu, cuda or auto (got ${v.device})`);
  return {
    quick: v.quick ?? false,
    device: v.device,
    duration: seconds('duration', v.duration),
    warmup: seconds('warmup', v.warmup),
    connections,
    endpoints: endpoints as Endpoint[] | undefined,
    batching,
    serverNodeArgs: list(v['server-node-args']?.replace(/\s+/g, ',')),
    json: v.json ?? (v.quick ? undefined : join(__dirname, 'results', 'serve-cpu-2core.json')),
  };
}

benchMain('bench:serve', options, runServeBench);
