// Types for build-cli.mjs, which stays plain JavaScript so that bin/flame-pipe.js runs it under bare node.
import type { BuildOptions, Plugin } from "esbuild"

export declare const bundlePath: string
export declare const shardWorkerPath: string
export declare const isStale: () => boolean
export declare const bundleOptions: BuildOptions
export declare const scriptBundleOptions: BuildOptions & { banner: { js: string } }
export declare const pipelinesPlugin: Plugin
export declare const bundleAtomically: (options: BuildOptions, outfile: string) => Promise<string>
export declare const warmCodeCache: (bundle: string, args: ReadonlyArray<string>) => void
export declare const buildCli: () => Promise<void>
