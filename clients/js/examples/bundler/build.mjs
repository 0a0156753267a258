// Bundles src/main.js, the hudong client and MessagePack into one file, dist/main.js,
// that any page can load with <script type="module">: no import map, no node needed
// to serve the client. `npm run build` (add --watch while developing).
import * as esbuild from "esbuild";

const options = {
  entryPoints: ["src/main.js"],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"], // browsers of the last few years; the client uses class fields
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
