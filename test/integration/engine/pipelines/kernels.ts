/**
 * Only the kernel build (its sources and compile-kernels, as the FLAME-MoE pipelines place them): what
 * a test needs to interrupt a compile and run it again, without the rest of a suite.
 */
import * as Pipeline from "../../../../src/Pipeline.ts"
import { fromRoot } from "../../../../src/ProjectRoot.ts"
import { node, ref } from "../../../../src/Stage.ts"
import { compileKernels } from "../../../../stages/kernels.ts"
import { source } from "../../../../stages/source.ts"

export default Pipeline.define({
  name: "kernels",
  description: "compile the worker from its sources",
  presets: { default: "" },
  defaultPreset: "default",
  build: () => [
    node(source, { id: "source/kernels/src", params: { path: fromRoot("kernels", "src"), kind: "dir", name: "src" } }),
    node(source, { id: "source/kernels/Makefile", params: { path: fromRoot("kernels", "Makefile") } }),
    node(compileKernels, {
      id: "compile-kernels",
      inputs: { sources: ref("source/kernels/src", "src"), makefile: ref("source/kernels/Makefile", "Makefile") }
    })
  ]
})
