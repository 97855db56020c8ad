import { defineConfig } from "vitest/config";

// The specs drive the built Worker (build/) through Miniflare; build it first
// with `bash scripts/build-worker.sh` (scripts/test.sh does).
export default defineConfig({
  test: {
    include: ["edge/**/*.spec.{ts,mjs}"],
    // Starting workerd and compiling the wasm takes a moment on a cold machine.
    hookTimeout: 60_000,
    testTimeout: 30_000,
  },
});
