// The GPU check's training:half phase (gpu/gpu-check.ts runs it): mixed precision's quality
// target (issue 26) — "validation loss after 500 steps within 1 % of fp32". The same character
// LSTM (2 x 512, E 64), the same seed and data (Tiny Shakespeare, $RNNLM_SHAKESPEARE, which
// gpu/gpu-check.sh unpacks), trained by fit for 500 steps (5 epochs of exactly 100 windows of
// 32 x 64) in fp32, bf16 and fp16 (fp16 with fit's default dynamic loss scale); each run's
// validation loss after every epoch, its tokens/s, and for fp16 the overflows and final scale.
import { readFileSync } from 'node:fs';
import type { Precision } from '../lib/backend/types';
import { CharTokenizer, LanguageModel } from '../lib/index';

const B = 32, T = 64, STEPS_PER_EPOCH = 100, EPOCHS = 5;

export async function halfTraining() {
  const path = process.env.RNNLM_SHAKESPEARE;
  if (!path) throw new Error('training:half needs RNNLM_SHAKESPEARE (gpu/gpu-check.sh sets it from .gpu/tinyshakespeare.txt.xz)');
  const text = readFileSync(path, 'utf8');
  // Each of the B columns holds STEPS_PER_EPOCH windows of T targets (+1 for the first input).
  const train = text.slice(0, B * (STEPS_PER_EPOCH * T + 1));
  const valid = text.slice(Math.floor(text.length * 0.9));
  const tokenizer = CharTokenizer.fit(text);
  const runs: Record<string, { valLoss: number[]; tokensPerSecond: number; overflows?: number; lossScale?: number; error?: string }> = {};
  for (const precision of ['fp32', 'bf16', 'fp16'] as Precision[]) {
    const model = await LanguageModel.create({ tokenizer, device: 'cuda', precision, cell: 'lstm', embeddingSize: 64, hiddenSize: 512, layers: 2, seed: 1 });
    try {
      const logs = await model.fit(train, { validation: valid, epochs: EPOCHS, batchSize: B, seqLength: T, optimizer: { type: 'adam', lr: 2e-3 }, clipNorm: 5, progress: false, seed: 1 });
      const steps = logs.reduce((a, l) => a + l.tokens, 0) / (B * T);
      if (steps !== STEPS_PER_EPOCH * EPOCHS) throw new Error(`training:half ran ${steps} steps, not ${STEPS_PER_EPOCH * EPOCHS}`);
      const last = logs[logs.length - 1];
      runs[precision] = {
        valLoss: logs.map((l) => l.valLoss!),
        tokensPerSecond: logs.reduce((a, l) => a + l.tokens, 0) / logs.reduce((a, l) => a + l.seconds, 0),
        ...(last.lossScale !== undefined ? { overflows: logs.reduce((a, l) => a + (l.overflows ?? 0), 0), lossScale: last.lossScale } : {}),
      };
      console.log(`training:half ${precision}: validation loss ${runs[precision].valLoss.map((v) => v.toFixed(4)).join(' ')}, ${Math.round(runs[precision].tokensPerSecond)} tokens/s${last.lossScale !== undefined ? `, ${runs[precision].overflows} overflows, scale ${last.lossScale}` : ''}`);
    } catch (e) {
      console.error(`training:half ${precision}: ERROR`, e);
      runs[precision] = { valLoss: [], tokensPerSecond: 0, error: String((e as Error)?.stack ?? e) };
    } finally {
      model.dispose();
    }
  }
  const final = (p: string) => runs[p].valLoss[EPOCHS - 1];
  const rows = (['bf16', 'fp16'] as const).map((p) => {
    const relDiff = Math.abs(final(p) - final('fp32')) / final('fp32');
    const speedup = runs[p].tokensPerSecond / runs.fp32.tokensPerSecond;
    const pass = Number.isFinite(relDiff) && relDiff <= 0.01;
    console.log(`training:half ${p}: final validation loss ${final(p)?.toFixed(4)} vs fp32 ${final('fp32')?.toFixed(4)}: ${(relDiff * 100).toFixed(2)} % (target <= 1 %: ${pass ? 'met' : 'MISSED'}); ${speedup.toFixed(2)}x fp32's tokens/s`);
    return { precision: p, relDiff, speedup, pass };
  });
  return { config: { cell: 'lstm', layers: 2, hiddenSize: 512, embeddingSize: 64, batchSize: B, seqLength: T, steps: STEPS_PER_EPOCH * EPOCHS }, runs, rows };
}
