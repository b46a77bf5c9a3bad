//! `maxMemory` in a host that does not count heap bytes (this test binary
//! installs no counting allocator, like a native host of the C library):
//! monty cannot bound the total, but refuses any single allocation it sizes
//! up front that is larger than the limit on its own.

mod common;

use common::{Host, complete, python_error};
use monty_types::{ExcType, MontyObject, ResourceLimits};

#[test]
fn single_allocations_past_the_limit_raise_memory_error() {
    let limits = ResourceLimits {
        max_memory: Some(100 << 20),
        ..ResourceLimits::default()
    };
    for code in ["'a' * 10**10", "bytes(10**10)", "[0] * 10**9"] {
        let host = Host::open(code, &[], limits.clone());
        let exc = python_error(host.send(&monty_wire::protocol::Request::Run(vec![])));
        assert_eq!(exc.exc_type(), ExcType::MemoryError, "{code}: {exc:?}");
    }
    // Small allocations are not refused.
    let host = Host::open("len('a' * 1000)", &[], limits);
    assert_eq!(
        complete(host.send(&monty_wire::protocol::Request::Run(vec![]))),
        MontyObject::int(1000)
    );
}
