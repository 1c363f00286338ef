// Compile contracts/src/*.sol with the pinned solcjs (npm `solc`) and write contracts/artifacts/<Name>.json.
// `node contracts/build.mjs --check` recompiles in memory and exits 1 if any committed artifact differs.
import { readFileSync, writeFileSync, readdirSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const require = createRequire(join(root, "package.json"));
const solc = require("solc");

const PINNED = "0.8.28";
const srcDir = join(here, "src");
const outDir = join(here, "artifacts");
const check = process.argv.includes("--check");

const version = solc.version();
if (!version.startsWith(PINNED + "+")) {
  console.error(`solc ${version} is not the pinned ${PINNED}`);
  process.exit(2);
}

const sources = {};
for (const f of readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[`src/${f}`] = { content: readFileSync(join(srcDir, f), "utf8") };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    metadata: { bytecodeHash: "none" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};

function findImports(path) {
  for (const base of [here, join(root, "node_modules")]) {
    const p = join(base, path);
    if (existsSync(p)) return { contents: readFileSync(p, "utf8") };
  }
  return { error: `not found: ${path}` };
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

if (!check) mkdirSync(outDir, { recursive: true });
let mismatched = 0;
const produced = new Set();
for (const file of Object.keys(sources)) {
  for (const [name, c] of Object.entries(output.contracts[file] || {})) {
    if (!c.evm.bytecode.object) continue; // interfaces and abstract contracts
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: version,
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    const text = JSON.stringify(artifact, null, 2) + "\n";
    const path = join(outDir, `${name}.json`);
    produced.add(`${name}.json`);
    if (check) {
      if (!existsSync(path) || readFileSync(path, "utf8") !== text) {
        console.error(`artifact out of date: contracts/artifacts/${name}.json`);
        mismatched += 1;
      }
    } else {
      writeFileSync(path, text);
      console.log(`wrote contracts/artifacts/${name}.json`);
    }
  }
}
for (const f of existsSync(outDir) ? readdirSync(outDir) : []) {
  if (f.endsWith(".json") && !produced.has(f)) {
    console.error(`artifact without a source: contracts/artifacts/${f}`);
    mismatched += 1;
  }
}
process.exit(mismatched ? 1 : 0);
