// Compiles offline: the compiler is the solcjs build that the npm package `solc` ships, not a download.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

const compiler = {
  version: require("solc/package.json").version,
  path: require.resolve("solc/soljson.js"),
  settings: {
    evmVersion: "prague",
    optimizer: { enabled: true, runs: 200 },
  },
};

export default {
  solidity: {
    // Hardhat 3 builds with the `production` profile for `hardhat build --build-profile production`; both are
    // spelled out so that neither falls back to settings without the EVM target.
    profiles: { default: compiler, production: compiler },
  },
};
