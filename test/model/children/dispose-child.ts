// A child process for test/model/inference.test.ts: disposes a model while generate() (or beamSearch())
// runs, at a different moment in each round, and prints each call's outcome. A read left in
// flight that rejects unhandled ends the process with exit code 1 before it prints "done".
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { networkOf } from '../../../lib/advanced';
import { LanguageModel } from '../../../lib/model';
import { EOS_ID } from '../../../lib/tokenizers';

const rounds = Number(process.argv[2] ?? 24);

/** Round i's moment: at once (no await), after n microtasks, after n event-loop turns, or after n ms. */
function moment(i: number): Promise<void> | undefined {
  const n = Math.floor(i / 4) + 1;
  const times = async (f: () => Promise<unknown>) => {
    for (let k = 0; k < n; k++) await f();
  };
  if (i % 4 === 0) return undefined;
  return i % 4 === 1 ? times(() => Promise.resolve()) : i % 4 === 2 ? times(() => nextTurn()) : sleep(n);
}

async function main() {
  for (let i = 0; i < rounds; i++) {
    const m = await LanguageModel.create({ vocabSize: 40, embeddingSize: 8, hiddenSize: 8, layers: 2, device: 'cpu', seed: i });
    // <eos> made (almost) impossible: the beams run on too (they would end once W of them finished).
    networkOf(m).writeParam('decoder.bias', Float32Array.from({ length: 40 }, (_, id) => (id === EOS_ID ? -100 : 0)));
    // Every fifth round a beam search; otherwise far more tokens than can be made before dispose.
    const call = i % 5 === 4 ? m.beamSearch([5, 6], { beamWidth: 4, maxTokens: 100_000 }) : m.generate({ prompt: [5, 6], maxTokens: 1_000_000, stopAtEos: false, seed: i });
    const outcome = call.then(() => 'resolved', (e: { code?: string }) => `rejected ${e.code}`);
    const wait = moment(i);
    if (wait) await wait;
    m.dispose();
    console.log(`${i % 5 === 4 ? 'beamSearch' : 'generate'} ${await outcome}`);
  }
  await sleep(100); // late rejections surface here
  console.log('done');
}

void main();
