/**
 * `import()` of a module that is not part of the bundle (a pipeline given as a module path, the build
 * script). The bundled CLI runs as a script compiled with a V8 code cache (scripts/cached-bundle.cjs),
 * and on Node 20 such a script has no `import()` of its own (it would need
 * --experimental-vm-modules): its loader passes one in as `__flameImport`. Run from the sources,
 * plain `import()` is used.
 */
declare const __flameImport: ((specifier: string) => Promise<unknown>) | undefined

export const importExternal = <A = unknown>(specifier: string): Promise<A> =>
  (typeof __flameImport === "function" ? __flameImport(specifier) : import(specifier)) as Promise<A>
