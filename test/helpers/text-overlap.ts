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
