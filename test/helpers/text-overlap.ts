/**
 * The distinct words of a text, as a reader would compare them: lowercased, with punctuation
 * removed (so "It’s" and "it's" are both "its", "state-of-the-art" is "stateoftheart").
 */
export function distinctWords(text: string): Set<string> {
  const words = text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s]/gu, '')
    .split(/\s+/u)
    .filter((word) => word.length > 0);
  return new Set(words);
}

/**
 * The share of `expected`'s distinct words that also occur in `actual`, from 0 to 1: how much of
 * a ground truth an OCR text recovered, ignoring order, case, punctuation and repetitions.
 * 1 when `expected` has no words.
 */
export function wordOverlap(expected: string, actual: string): number {
  const wanted = distinctWords(expected);
  if (wanted.size === 0) return 1;
  const found = distinctWords(actual);
  let shared = 0;
  for (const word of wanted) if (found.has(word)) shared++;
  return shared / wanted.size;
}

/** The words of a text as {@link distinctWords} normalizes them, in order, repeats kept. */
export function wordList(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s]/gu, '')
    .split(/\s+/u)
    .filter((word) => word.length > 0);
}

/**
 * Word recall, the usual OCR measure (ISRI/ocrevalUAtion "bag of words"): the share of the ground
 * truth's words, counted with repeats, that the OCR text also has (each OCR word matches at most
 * one ground-truth word), ignoring order, case and punctuation. 1 when `expected` has no words.
 */
export function wordRecall(expected: string, actual: string): number {
  const available = new Map<string, number>();
  for (const word of wordList(actual)) available.set(word, (available.get(word) ?? 0) + 1);
  const wanted = wordList(expected);
  if (wanted.length === 0) return 1;
  let found = 0;
  for (const word of wanted) {
    const left = available.get(word) ?? 0;
    if (left > 0) {
      found++;
      available.set(word, left - 1);
    }
  }
  return found / wanted.length;
}

/**
 * Character error rate: the Levenshtein distance between the two texts (runs of whitespace made
 * one space, ends trimmed) over the ground truth's length. Order matters, so text read in the
 * wrong order (columns interleaved) scores badly even when every word is there.
 */
export function characterErrorRate(expected: string, actual: string): number {
  const a = expected.replace(/\s+/gu, ' ').trim();
  const b = actual.replace(/\s+/gu, ' ').trim();
  if (a.length === 0) return b.length === 0 ? 0 : 1;
  let previous = new Uint32Array(b.length + 1).map((_, j) => j);
  let current = new Uint32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (ca === b.charCodeAt(j - 1) ? 0 : 1);
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution);
    }
    [previous, current] = [current, previous];
  }
  return previous[b.length]! / a.length;
}
