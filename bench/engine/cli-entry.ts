/**
 * Entry point of the bench CLI bundle: the real CLI (src/main.ts) with the benchmark's pipelines
 * compiled in, laid out as the shipped dist/flame-pipe.cjs is (src/bin.bundled.ts): the `--version`
 * fast path first, the CLI and each pipeline evaluated on demand.
 */
import { answeredVersion } from "../../src/cli/Version.ts"

if (!answeredVersion(process.argv)) {
  void Promise.all([import("../../src/main.ts"), import("../../src/pipeline/Registry.ts")]).then((
    [{ main }, { PipelineRegistry }]
  ) =>
    main(PipelineRegistry.fromLoaders({
      generated: () => import("./generated.ts").then((m) => m.default),
      bigfiles: () => import("./bigfiles.ts").then((m) => m.default)
    }))
  )
}
