export { pyLstrip, pyRstrip, pyStrip } from '../utils/python';

/** Python's Unicode `\w` (letters, numbers and underscore in any script), for regexes with the `u` flag. */
export const PY_WORD = '[\\p{L}\\p{N}_]';
