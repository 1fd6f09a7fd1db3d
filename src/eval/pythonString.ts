/**
 * The few Python string semantics the harness's prompt code relies on, where JavaScript differs:
 * - `str.strip()` / `str.rstrip()` strip Python's whitespace (str.isspace), which includes \x1c-\x1f and
 *   \x85 but not U+FEFF (JavaScript's trim is the other way round);
 * - `str.capitalize()` title-cases the first character and lower-cases all the others;
 * - `len(str)` counts code points, not UTF-16 units.
 */

const pythonWhitespace = "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
const leading = new RegExp(`^[${pythonWhitespace}]+`, "u")
const trailing = new RegExp(`[${pythonWhitespace}]+$`, "u")

export const pyStrip = (s: string): string => s.replace(leading, "").replace(trailing, "")
export const pyLstrip = (s: string): string => s.replace(leading, "")
export const pyRstrip = (s: string): string => s.replace(trailing, "")

/** len(s) in Python: code points. */
export const pyLen = (s: string): number => {
  let n = 0
  for (const _ of s) n++
  return n
}

// Characters whose title case differs from their upper case (Unicode SpecialCasing / UnicodeData); JavaScript
// only offers toUpperCase. Covers Latin digraphs and ligatures; rarer Greek/Armenian forms fall back to upper.
const titleCase: Readonly<Record<string, string>> = {
  "\u01c4": "\u01c5",
  "\u01c5": "\u01c5",
  "\u01c6": "\u01c5",
  "\u01c7": "\u01c8",
  "\u01c8": "\u01c8",
  "\u01c9": "\u01c8",
  "\u01ca": "\u01cb",
  "\u01cb": "\u01cb",
  "\u01cc": "\u01cb",
  "\u01f1": "\u01f2",
  "\u01f2": "\u01f2",
  "\u01f3": "\u01f2",
  "\u00df": "Ss",
  "\ufb00": "Ff",
  "\ufb01": "Fi",
  "\ufb02": "Fl",
  "\ufb03": "Ffi",
  "\ufb04": "Ffl",
  "\ufb05": "St",
  "\ufb06": "St"
}

/** Python 3.8+ str.capitalize(): "hELLO wORLD" -> "Hello world". */
export const pyCapitalize = (s: string): string => {
  const first = s.codePointAt(0)
  if (first === undefined) return s
  const head = String.fromCodePoint(first)
  const rest = s.slice(head.length)
  return (titleCase[head] ?? head.toUpperCase()) + rest.toLowerCase()
}
