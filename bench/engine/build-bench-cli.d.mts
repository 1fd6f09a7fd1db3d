// Types for build-bench-cli.mjs, which stays plain JavaScript so it runs under bare node like scripts/build-cli.mjs.
export declare const benchBundlePath: string
export declare const buildBenchCli: () => Promise<string>
