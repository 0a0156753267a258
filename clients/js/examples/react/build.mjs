// Bundles the React app (src/main.jsx) with React and the hudong client into
// dist/main.js. `npm run build` (add --watch while developing).
import * as esbuild from "esbuild";

const options = {
  entryPoints: ["src/main.jsx"],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  jsx: "automatic", // React 17+'s JSX transform: no `import React` in every file
  define: { "process.env.NODE_ENV": '"production"' }, // React's production build
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
