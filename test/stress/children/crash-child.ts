// A child process for test/stress/crash-safety.test.ts, killed with SIGKILL at random moments.
//   save DIR: trains a little and saves DIR/model.safetensors, over and over, printing
//             "saving" / "saved" around each save.
//   fit DIR:  fit with a checkpoint every 5 steps (resuming when one exists); prints "ready" when
//             training starts and, at the end, the per-epoch losses and the final validation loss.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LanguageModel } from '../../../lib/model';
import { WordTokenizer } from '../../../lib/tokenizers';

const [mode, dir] = process.argv.slice(2);
const text = 'the cat sat on the mat . the dog sat on the log . a bird sang in the tree . '.repeat(80);
const tokenizer = WordTokenizer.fit(text);
const path = join(dir, 'model.safetensors');

async function main() {
  const model = await LanguageModel.create({ tokenizer, embeddingSize: 64, hiddenSize: 128, layers: 2, device: 'cpu', seed: 3 });
  if (mode === 'save') {
    // A larger decoder makes each save take long enough to be hit.
    for (let i = 0; ; i++) {
      await model.fit(text.slice(0, 400), { epochs: 1, batchSize: 2, seqLength: 8, progress: false, seed: i });
      console.log('saving');
      await model.save(path);
      console.log('saved');
    }
  }
  console.log('ready');
  const logs = await model.fit(text, {
    epochs: 3, batchSize: 4, seqLength: 8, progress: false, seed: 5, optimizer: { type: 'adam', lr: 3e-3 },
    // The state is kept at the end too, so that a kill after the last save still resumes (to the end).
    checkpoint: { path, every: 5, keepTrainingState: true }, resume: existsSync(path),
  });
  const { loss } = await model.evaluate(text.slice(0, 300));
  console.log(JSON.stringify({ losses: logs.map((l) => l.loss), final: loss }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
