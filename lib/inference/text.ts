/**
 * The text of generated tokens as they arrive: what each token adds, where the first stop string
 * starts, and which tokens are safe to show (stream) — a token that might begin a stop string is
 * held back until the string is ruled out, so a stop string never leaks into streamed text.
 *
 * It looks at the text each token adds and the (longest stop - 1) characters before it: a stop
 * string may span tokens, and the cost per token does not grow with the text. This relies on what
 * decode does with both tokenizers (and with ids joined by spaces): the text only grows at its
 * end, and what a token adds depends only on it and on the last token before it that shows
 * (specials show nothing).
 */

/** One of the most likely tokens at a step, with its log-probability under the model. */
export interface TopToken {
  token: string;
  id: number;
  logProb: number;
}

/** A generated token: its id, its log-probability under the model, and the text it adds. */
export interface GeneratedToken {
  text: string;
  id: number;
  logProb: number;
  /** With `topLogProbs: k`: the k most likely tokens at this step, most likely first. */
  top?: TopToken[];
}

export class TokenText {
  private tail = '';
  /** Length of the whole text so far (up to the stop string, once found). */
  private length = 0;
  private last?: { id: number; text: string };
  private readonly keep: number;
  /** Tokens not shown yet, with where their text ends. */
  private held: { token: GeneratedToken; end: number }[] = [];
  /** Where the first stop string starts, once there is one. */
  cut = -1;

  constructor(
    private readonly stops: string[],
    private readonly decode: (ids: number[]) => string,
  ) {
    this.keep = Math.max(0, stops.reduce((n, s) => Math.max(n, s.length), 0) - 1);
  }

  /** Adds a token; returns the tokens now safe to show. `cut` >= 0 once a stop string appears. */
  push(id: number, logProb: number, top?: TopToken[]): GeneratedToken[] {
    const alone = this.decode([id]);
    const added = alone === '' ? '' : this.last ? this.decode([this.last.id, id]).slice(this.last.text.length) : alone;
    if (alone !== '') this.last = { id, text: alone };
    const window = this.tail + added;
    let at = Infinity;
    for (const stop of this.stops) {
      const i = window.indexOf(stop);
      if (i >= 0 && i < at) at = i;
    }
    const start = this.length;
    this.length += added.length;
    this.held.push({ token: top ? { text: added, id, logProb, top } : { text: added, id, logProb }, end: this.length });
    if (at < Infinity) {
      this.cut = start - this.tail.length + at;
      return this.flush();
    }
    this.tail = window.slice(Math.max(0, window.length - this.keep));
    const safe = this.length - this.keep;
    let n = 0;
    while (n < this.held.length && this.held[n].end <= safe) n++;
    return this.held.splice(0, n).map((h) => h.token);
  }

  /** The held tokens (at the end): their text cut where the stop string starts, and none after. */
  flush(): GeneratedToken[] {
    const out: GeneratedToken[] = [];
    for (const { token, end } of this.held.splice(0)) {
      const begin = end - token.text.length;
      if (this.cut >= 0 && begin >= this.cut) break;
      out.push(this.cut >= 0 && end > this.cut ? { ...token, text: token.text.slice(0, this.cut - begin) } : token);
    }
    return out;
  }
}
