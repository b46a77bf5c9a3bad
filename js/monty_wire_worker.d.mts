// TypeScript resolves `import ... from "./monty_wire_worker.mjs"` to this
// file; the declarations are in monty_wire_worker.d.ts.
export * from "./monty_wire_worker.js";
