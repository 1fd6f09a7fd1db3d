/**
 * `flame-pipe --version` alone is answered before the CLI (effect, @effect/cli, the commands) loads:
 * the entry points call this first, so asking for the version costs a node start and one file read.
 */
import * as fs from "node:fs"
import { fromRoot } from "../ProjectRoot.ts"

/** The package's version, the one source every `--version` reads. */
export const packageVersion = (): string =>
  (JSON.parse(fs.readFileSync(fromRoot("package.json"), "utf8")) as { version: string }).version

/** Prints the version and returns true when the arguments are exactly `--version`. */
export const answeredVersion = (argv: ReadonlyArray<string>): boolean => {
  if (argv.length !== 3 || argv[2] !== "--version") return false
  process.stdout.write(`${packageVersion()}\n`)
  return true
}
