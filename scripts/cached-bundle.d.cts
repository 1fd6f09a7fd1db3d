// Types for cached-bundle.cjs, which stays plain JavaScript so that bin/flame-pipe.js runs it under bare node.
import type { Script } from "node:vm"

export type CacheState = "accepted" | "rejected" | "absent"
export declare const loaderPath: string
export declare const cachePath: (bundle: string) => string
export declare const compileBundle: (bundle: string) => { script: Script; cache: CacheState; identity: string }
/** "memo": a plan answered from its memo (scripts/plan-memo.cjs), the bundle not loaded. */
export declare const runBundle: (bundle: string) => CacheState | "memo"
