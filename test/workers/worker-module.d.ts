// Tells the workers types which module is the Worker's main module, so `exports` from
// `cloudflare:workers` is typed (what `wrangler types` would generate).
declare namespace Cloudflare {
  interface GlobalProps {
    mainModule: typeof import("../../src/index.ts");
  }
}
