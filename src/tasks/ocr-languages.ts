import { francAll } from 'franc-min';

/**
 * The languages Tally reads, as Tesseract names them (ISO 639-2/B), with the name shown to
 * people. Each one's model comes from its `@tesseract.js-data/<code>` package (installed with the
 * app, never downloaded at run time).
 */
export const OCR_LANGUAGES = {
  eng: 'English',
  fra: 'French',
  deu: 'German',
  spa: 'Spanish',
} as const;

export type OcrLanguage = keyof typeof OCR_LANGUAGES;

/** The language read when none is given, and the first pass of automatic detection. */
export const DEFAULT_OCR_LANGUAGE: OcrLanguage = 'eng';

export const OCR_LANGUAGE_CODES = Object.keys(OCR_LANGUAGES) as [OcrLanguage, ...OcrLanguage[]];

/** True when `code` is one of {@link OCR_LANGUAGES}. */
export function isOcrLanguage(code: unknown): code is OcrLanguage {
  return typeof code === 'string' && Object.hasOwn(OCR_LANGUAGES, code);
}

// franc's trigram profiles are unreliable on short texts (its own README: "give it at least a
// sentence"); below this many letters the first pass stands.
const MIN_LETTERS_TO_GUESS = 120;
// francAll scores the best language 1 and the others relative to it; a runner-up this close means
// the text is ambiguous, so the first pass stands.
const MAX_RUNNER_UP_SCORE = 0.9;

/**
 * Guesses which supported language a page's text is in, from its letter trigrams (franc-min,
 * restricted to {@link OCR_LANGUAGES}; franc names them with ISO 639-3 codes, which for these
 * four are the same as Tesseract's). Works on a first pass read in English too: an English model
 * drops accents but keeps the trigrams that make French, German or Spanish recognizable.
 *
 * @returns the language, or undefined when the text is too short or the guess too close to call
 */
export function guessOcrLanguage(text: string): OcrLanguage | undefined {
  const letters = text.match(/\p{L}/gu)?.length ?? 0;
  if (letters < MIN_LETTERS_TO_GUESS) return undefined;
  const ranked = francAll(text, { only: OCR_LANGUAGE_CODES, minLength: 1 });
  const [best, runnerUp] = ranked;
  if (!best || !isOcrLanguage(best[0])) return undefined;
  if (runnerUp && runnerUp[1] > MAX_RUNNER_UP_SCORE) return undefined;
  return best[0];
}
