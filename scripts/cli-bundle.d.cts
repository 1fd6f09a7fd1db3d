// Types for cli-bundle.cjs, which stays plain JavaScript so that bin/flame-pipe.js runs it under bare node.

export declare const root: string
export declare const bundlePath: string
export declare const shardWorkerPath: string
export declare const isStale: () => boolean
