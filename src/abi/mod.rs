//! The front doors: what a host outside Rust calls.
//!
//! - [`ffi`]: the eight C entry points (and the header generated from them),
//!   for native hosts (Dart's `dart:ffi`, Python's `ctypes`, C, ...);
//! - `wasm`: what the WebAssembly build exports beside them, for JavaScript
//!   hosts (only on `wasm32` with the `wasm-reactor` feature);
//! - `registry`: the state both share: the table of open sessions, the set
//!   of response buffers a host holds, and the status codes a host reads.
//!
//! Everything below this layer (the session engine, the codec) is plain Rust
//! and knows nothing of handles, raw pointers or status codes.

pub mod ffi;
mod registry;
#[cfg(all(target_arch = "wasm32", feature = "wasm-reactor"))]
pub mod wasm;
