// Lint: typescript-eslint's recommended rules, plus the house rule that keeps Node built-ins
// out of every layer that must run in a browser (everything but cli/ and *.node.ts).
import tseslint from "typescript-eslint";
import { builtinModules } from "node:module";

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ["node_modules/**", "dist/**", "guests/build/**", "bench/peers/build/**"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-non-null-assertion": "off",
      "no-constant-condition": ["error", { checkLoops: false }],
      "prefer-const": "error",
    },
  },
  {
    files: ["src/**/*.ts"],
    ignores: ["src/cli/**", "src/**/*.node.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        paths: nodeBuiltins.map((name) => ({ name, message: "browser-safe layer: Node built-ins only in src/cli/ or *.node.ts" })),
      }],
      "no-restricted-globals": ["error",
        { name: "process", message: "browser-safe layer: pass host services in" },
        { name: "Buffer", message: "browser-safe layer: use Uint8Array" },
        { name: "require", message: "ES modules only" },
      ],
    },
  },
);
