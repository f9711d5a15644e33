// The cells are listed once in TypeScript (CELLS in lib/backend/types.ts) and once natively
// (native/common/rnn_layout.h): the two agree on the names and on each cell's gate count, which
// the native descriptor shows as the rows of weight_ih (gates x hiddenSize).
import { expect, test } from 'vitest';
import { cpuBackend } from '../../lib/backend/cpu';
import { CELLS, CELL_NAMES } from '../../lib/backend/types';

test('every TypeScript cell is a native cell with the same number of gates', () => {
  const H = 5;
  for (const cell of CELL_NAMES) {
    const rnn = cpuBackend.createRnn({ cell, inputSize: 3, hiddenSize: H, layers: 1 });
    expect({ cell, rows: rnn.weightParam(0, 0).shape[0] }).toEqual({ cell, rows: CELLS[cell].gates * H });
    expect({ cell, rows: rnn.weightParam(0, 1).shape }).toEqual({ cell, rows: [CELLS[cell].gates * H, H] });
  }
});

test('the native side knows no cell that TypeScript does not', () => {
  // parseCell's error lists the native cells.
  let message = '';
  try {
    cpuBackend.createRnn({ cell: 'nope' as never, inputSize: 3, hiddenSize: 5, layers: 1 });
  } catch (e) {
    message = (e as Error).message;
  }
  const native = [...message.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]).filter((c) => c !== 'nope');
  expect(native.sort()).toEqual([...CELL_NAMES].sort());
});
