#!/usr/bin/env node
// The CLI is written in TypeScript, and pipelines are TypeScript modules loaded at run time;
// tsx compiles both on the fly (and caches), so there is no separate build step.
import { register } from "tsx/esm/api"

register()
await import("../src/bin.ts")
