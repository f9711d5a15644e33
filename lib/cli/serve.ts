/**
 * rnnlm serve: an HTTP server for a checkpoint (lib/server/). It listens first and loads the
 * model after, so /health says 503 while it loads; SIGTERM / SIGINT stop it gracefully (requests
 * in flight finish within --shutdown-timeout; a second signal cancels them at once) and it exits 0.
 */
import { basename } from 'node:path';
import { Command } from 'commander';
import { DEFAULTS } from '../defaults';
import { LanguageModel } from '../model';
import { createServer } from '../server/index';
import { deviceOption, int, notePrecision, num, precisionOption, quantizeOption, shown } from './flags';

const S = DEFAULTS.serve;

export function serveCommand(prog: Command): void {
  prog
    .command('serve')
    .description('serve a model over HTTP: OpenAI-style /v1/completions (streaming), /v1/next, /v1/score, /v1/models, /health, /metrics')
    .argument('<model>', 'a .safetensors checkpoint')
    .option('--host <host>', `address to listen on${shown(S.host)}`)
    .option('--port <n>', `port (0: any free port, printed)${shown(S.port)}`, int('--port'))
    .addOption(deviceOption(DEFAULTS.load.device))
    .addOption(precisionOption())
    .addOption(quantizeOption())
    .option('--model-id <id>', "the model's id in requests and answers (default: the file name without .safetensors)")
    .option('--max-body-bytes <n>', `largest request body; beyond: 413${shown(S.maxBodyBytes)}`, int('--max-body-bytes'))
    .option('--max-tokens <n>', `largest max_tokens a request may ask for${shown(S.maxTokens)}`, int('--max-tokens'))
    .option('--max-concurrent <n>', `requests computed at once (batched together)${shown(S.maxConcurrent)}`, int('--max-concurrent'))
    .option('--max-queue <n>', `requests waiting for a slot; beyond: 503 with Retry-After${shown(S.maxQueue)}`, int('--max-queue'))
    .option('--timeout <s>', `seconds a request may take, queue included; then 504${shown(S.timeout)}`, num('--timeout'))
    .option('--shutdown-timeout <s>', `seconds requests in flight get to finish on SIGTERM/SIGINT${shown(S.shutdownTimeout)}`, num('--shutdown-timeout'))
    .option('--access-log', 'one JSON line per request on stdout', false)
    .option('--no-batching', 'compute requests one at a time (continuous batching is on by default)')
    .option('--max-batch-size <n>', `rows stepped together at most${shown(DEFAULTS.load.maxBatchSize)}`, int('--max-batch-size'))
    .action(async (path: string, o) => {
      const loading = LanguageModel.load(path, { device: o.device, precision: o.precision, quantize: o.quantize, batching: o.batching, maxBatchSize: o.maxBatchSize });
      const modelId: string = o.modelId ?? basename(path).replace(/\.safetensors$/, '');
      const server = createServer(loading, {
        modelId, maxBodyBytes: o.maxBodyBytes, maxTokens: o.maxTokens,
        maxConcurrent: o.maxConcurrent, maxQueue: o.maxQueue, timeout: o.timeout, shutdownTimeout: o.shutdownTimeout, accessLog: o.accessLog,
      });
      let stopped!: () => void;
      const stop = new Promise<void>((r) => (stopped = r));
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        // The first signal drains; a second cancels what is left at once.
        const first = signals++ === 0;
        console.error(`rnnlm serve: ${signal}: ${first ? 'stopping; requests in flight may finish (send it again to cancel them)' : 'cancelling the requests in flight'}`);
        void server.close(first ? {} : { timeout: 0 }).then(stopped);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        console.log(`rnnlm serve: listening on ${await server.listen({ host: o.host ?? S.host, port: o.port ?? S.port })}`);
        const model = await Promise.race([loading, stop.then(() => null)]).catch(async (e: unknown) => {
          await server.close({ timeout: 0 });
          throw e;
        });
        if (model) {
          const c = model.config;
          console.log(`rnnlm serve: ready: ${modelId} (${c.cell}, ${c.layers} x ${c.hiddenSize}, ${model.parameterCount.toLocaleString('en-US')} parameters, vocabulary ${c.vocabSize}, ${model.device}${model.precision !== 'fp32' ? `, ${model.precision}` : ''}${model.quantization ? `, ${model.quantization}` : ''})`);
          notePrecision(model, o.precision);
          await stop;
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        // The model is ours: freed once the server has closed (or once it loaded, when a signal came first).
        await loading.then((m) => m.dispose(), () => {});
      }
    });
}
