//! A snippet fed with `skipTypeCheck` runs unchecked, and what it declares
//! still counts for the snippets checked after it, also across a dump.

mod common;

use common::{Host, complete, function_call};
use monty_types::MontyObject;
use monty_wire::protocol::{CallResult, Feed, OpenRepl, Outcome, Request, Response, TypeCheckOptions};

fn checking_repl() -> Host {
    let host = Host::new();
    let open = OpenRepl {
        type_check: Some(TypeCheckOptions::default()),
        ..OpenRepl::default()
    };
    let response = host.send(&Request::OpenRepl(Box::new(open)));
    assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
    host
}

fn unchecked(code: &str) -> Feed {
    let mut feed = Feed::new(code);
    feed.skip_type_check = true;
    feed
}

fn dump_of(response: Response) -> Vec<u8> {
    match response.outcome {
        Outcome::Dump(bytes) => bytes,
        other => panic!("expected a dump, got {other:?}"),
    }
}

#[test]
fn a_skipped_snippet_is_seen_by_later_checks() {
    let host = checking_repl();
    complete(host.send(&Request::FeedRun(unchecked("def f():\n    return 1"))));
    // Checked: `f` is known, so it runs.
    assert_eq!(
        complete(host.send(&Request::FeedRun(Feed::new("f()")))),
        MontyObject::int(1)
    );
}

#[test]
fn a_skipped_snippet_suspended_in_a_dump_is_seen_after_the_load() {
    let host = checking_repl();
    let mut feed = unchecked("def h():\n    return 2\nfetch()");
    feed.inputs = vec![("fetch".into(), MontyObject::function("fetch", None))];
    function_call(host.send(&Request::FeedStart(feed)));
    let loaded = Host::new();
    let response = loaded.send(&Request::LoadSession {
        dump: dump_of(host.send(&Request::DumpSession)),
        limits: Default::default(),
        access: Default::default(),
    });
    assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
    complete(loaded.resume(CallResult::Value(MontyObject::none())));
    assert_eq!(
        complete(loaded.send(&Request::FeedRun(Feed::new("h()")))),
        MontyObject::int(2)
    );
}
