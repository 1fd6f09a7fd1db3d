/**
 * Entry point when running from TypeScript sources: pipelines are imported from their files.
 */
import { answeredVersion } from "./cli/Version.ts"

if (!answeredVersion(process.argv)) {
  const [{ main }, { PipelineRegistry }] = await Promise.all([import("./main.ts"), import("./pipeline/Registry.ts")])
  main(PipelineRegistry.fromFiles)
}
