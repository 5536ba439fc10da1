/** Typos of known words: what "did you mean" offers. */
import { distance } from "fastest-levenshtein";

/**
 * `found` is close to exactly one of `choices` (a typo, not another word);
 * case is ignored. With `prefixes`, a word cut short also counts ("cidr" for
 * "cidrBlock"), when it is at least 3 letters long.
 */
export function didYouMean(
  found: string,
  choices: readonly string[],
  options: { prefixes?: boolean } = {},
): string | undefined {
  const word = found.toLowerCase();
  const close = choices.filter((c) => {
    const choice = c.toLowerCase();
    if (distance(word, choice) <= Math.max(2, c.length / 4)) return true;
    return options.prefixes === true && word.length >= 3 && choice.startsWith(word);
  });
  return close.length === 1 ? close[0] : undefined;
}
