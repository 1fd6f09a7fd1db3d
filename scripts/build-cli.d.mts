// Types for build-cli.mjs, which stays plain JavaScript so that bin/flame-pipe.js runs it under bare node.
import type { BuildOptions } from "esbuild"

export declare const bundlePath: string
export declare const shardWorkerPath: string
export declare const isStale: () => boolean
export declare const bundleOptions: BuildOptions
export declare const bundleAtomically: (options: BuildOptions, outfile: string) => Promise<string>
export declare const buildCli: () => Promise<void>
export declare const bundleSplitAtomically: (options: BuildOptions, outfile: string) => Promise<string>
