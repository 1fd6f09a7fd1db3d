// Types for plan-memo.cjs, which stays plain JavaScript so that bin/flame-pipe.js runs it under bare node.

export declare const memoDir: (bundle: string) => string
export declare const memoizable: (args: ReadonlyArray<string>) => boolean
export declare const replay: (
  bundle: string,
  identity: string,
  args: ReadonlyArray<string>
) => { readonly replayed: boolean; readonly key: string }
export declare const record: (bundle: string, key: string) => { readonly refuse: (reason: string) => void }
