// TypeScript resolves `import ... from "./monty_wire.mjs"` to this file; the
// declarations are in monty_wire.d.ts.
export * from "./monty_wire.js";
