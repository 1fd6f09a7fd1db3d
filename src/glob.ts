/**
 * The one glob matcher for stage ids (Slurm stage rules, audit's --stages). A `*` matches any run of
 * characters, `/` included: `train/*` means every stage under `train/`, however deep its id goes.
 * Every other character is literal (`eval/m.1`, `train/(x)`), as these patterns have always been read:
 * stage ids may hold characters that are glob syntax elsewhere.
 */
import picomatch from "picomatch"

// `bash`: a single `*` crosses `/` as `**` does.
const options = { bash: true, dot: true } as const

const literal = (pattern: string) => pattern.replace(/[?[\]{}()!+@|\\]/g, "\\$&")

export const globRegExp = (pattern: string): RegExp => picomatch.makeRe(literal(pattern), options)

export const globMatches = (pattern: string, stageId: string): boolean =>
  picomatch.isMatch(stageId, literal(pattern), options)
