/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// `npm run dev` proxies /api to the backend the same way server.mjs does in
// the runtime image: /api/predict -> $BACKEND_URL/predict.
const backend = process.env.BACKEND_URL ?? "http://localhost:8000";

export default defineConfig({
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
  },
  server: {
    proxy: {
      "/api": {
        target: backend,
        changeOrigin: true,
        rewrite: (path) => path.replace(/^\/api(?=\/|$)/, "") || "/",
      },
    },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
  },
});
