// `rnnlm serve --quantize int8` serves an int8 model: its completions and next-token answers are
// the library's int8 model's (LanguageModel.load(path, { quantize: 'int8' })) on the same checkpoint.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LanguageModel } from '../../lib/model';
import { charModel, kill, post, serve, tempDir, type ServeProcess } from './fixtures';

const dir = tempDir();
let server: ServeProcess, lib: LanguageModel, float: LanguageModel;

beforeAll(async () => {
  const path = await charModel(dir);
  server = await serve(path, '--quantize', 'int8');
  [lib, float] = await Promise.all([LanguageModel.load(path, { device: 'cpu', quantize: 'int8' }), LanguageModel.load(path, { device: 'cpu' })]);
  await server.ready;
}, 60_000);

afterAll(async () => {
  lib?.dispose();
  float?.dispose();
  try {
    // stop() checks exit code 0 and no signal on SIGTERM; within 30 s (about 1 s, on a loaded machine more).
    expect((await server.stop()).ms).toBeLessThan(30_000);
  } finally {
    kill(server);
  }
}, 60_000);

test("the ready line says int8; a completion is the int8 model's text for the seed", async () => {
  expect(server.stdout).toMatch(/^rnnlm serve: ready: char \(.*, cpu, int8\)$/m);
  const a = await post(server.base, '/v1/completions', { prompt: 'the ', max_tokens: 12, seed: 5 });
  expect(a.status).toBe(200);
  const g = await lib.generate({ prompt: 'the ', seed: 5, maxTokens: 12, stopAtEos: false, details: true });
  expect(a.body.choices[0].text).toBe(g.text);
});

test("/v1/next gives the int8 model's probabilities (which are not the float model's bits)", async () => {
  const a = await post(server.base, '/v1/next', { context: 'the ca', top_k: 4 });
  expect(a.status).toBe(200);
  const [q, f] = await Promise.all([lib.predictNext('the ca', { topK: 4 }), float.predictNext('the ca', { topK: 4 })]);
  expect(a.body.predictions.map((p: { token: string; probability: number }) => [p.token, p.probability])).toEqual(q.map((p) => [p.token, p.probability]));
  expect(q.map((p) => p.probability)).not.toEqual(f.map((p) => p.probability));
});
