// Bundles the Vue app (src/main.js) with Vue's runtime and the hudong client into
// dist/main.js. `npm run build` (add --watch while developing).
import * as esbuild from "esbuild";

const options = {
  entryPoints: ["src/main.js"],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  // Vue's compile-time flags for its esm-bundler build (the components use render
  // functions, so the runtime without the template compiler is enough).
  define: {
    "process.env.NODE_ENV": '"production"',
    __VUE_OPTIONS_API__: "true",
    __VUE_PROD_DEVTOOLS__: "false",
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: "false",
  },
  outfile: "dist/main.js",
  sourcemap: true,
  minify: true,
  logLevel: "info",
};

if (process.argv.includes("--watch")) {
  await (await esbuild.context(options)).watch();
} else {
  await esbuild.build(options);
}
