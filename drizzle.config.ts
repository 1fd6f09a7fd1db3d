import { defineConfig } from "drizzle-kit"

export default defineConfig({
  dialect: "sqlite",
  schema: "./src/lineage/schema.ts",
  out: "./drizzle"
})
