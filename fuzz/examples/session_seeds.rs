//! Writes the `session` target's seed corpus (fuzz/corpus/session/): real
//! session histories, encoded as the target decodes them.
//!
//!     cd fuzz && cargo run --example session_seeds

use sockjs_fuzz::session_input::{Carrier, Input, Kind, Op, Text};

fn t(s: &str) -> Text {
    Text(s.to_owned())
}

fn input(carrier: Carrier, ops: Vec<Op>) -> Input {
    // sockjs-node's defaults, a small response_limit so streams roll over.
    Input {
        carrier,
        heartbeat_ms: 25_000,
        disconnect_ms: 5_000,
        response_limit: 4096,
        start: 1_000,
        ops,
    }
}

fn seeds() -> Vec<(&'static str, Input)> {
    use Carrier::*;
    use Kind::*;
    use Op::*;
    vec![
        (
            "xhr-polling-echo",
            input(
                Http,
                vec![
                    Attach { kind: XhrPolling },
                    HandleTimeout(10),
                    Attach { kind: XhrPolling },
                    SendFlush(t("hello")),
                    HandleTimeout(20),
                    Attach { kind: XhrPolling },
                    SendFlush(t("world")),
                ],
            ),
        ),
        (
            "xhr-polling-expires",
            input(Http, vec![Attach { kind: XhrPolling }, HandleTimeout(5_000)]),
        ),
        (
            "xhr-streaming-batch",
            input(
                Http,
                vec![
                    Attach { kind: XhrStreaming },
                    Send(t("a")),
                    Send(t("b\"c")),
                    Send(t("\u{2028}\u{1f600}")),
                    Flush,
                    RunTimer,
                ],
            ),
        ),
        (
            "xhr-streaming-rollover",
            Input {
                response_limit: 300,
                ..input(
                    Http,
                    vec![
                        Attach { kind: XhrStreaming },
                        SendFlush(t(&"x".repeat(200))),
                        SendFlush(t(&"y".repeat(200))),
                        SendFlush(t("queued")),
                        HandleTimeout(100),
                        Attach { kind: XhrStreaming },
                    ],
                )
            },
        ),
        (
            "eventsource-heartbeats",
            input(
                Http,
                vec![
                    Attach { kind: EventSource },
                    SendFlush(t("line\r\nbreak%")),
                    RunTimer,
                    RunTimer,
                    ReceiverGone(0),
                ],
            ),
        ),
        (
            "htmlfile-script-breakout",
            input(
                Http,
                vec![
                    Attach { kind: HtmlFile },
                    SendFlush(t("</script><script>alert(1)</script>")),
                    Close {
                        code: 3000,
                        reason: t("Go away!"),
                    },
                ],
            ),
        ),
        (
            "jsonp-close-then-poll",
            input(
                Http,
                vec![
                    Attach { kind: Jsonp },
                    Send(t("last")),
                    Close {
                        code: 3000,
                        reason: t("Go away!"),
                    },
                    HandleTimeout(100),
                    Attach { kind: Jsonp },
                    Attach { kind: XhrPolling },
                    RunTimer,
                ],
            ),
        ),
        (
            "second-receiver-refused",
            input(
                Http,
                vec![
                    Attach { kind: XhrStreaming },
                    Attach { kind: XhrPolling },
                    SendFlush(t("still here")),
                    ReceiverGone(1),
                    ReceiverGone(0),
                    Attach { kind: XhrPolling },
                ],
            ),
        ),
        (
            "never-attached",
            input(
                Http,
                vec![Send(t("dropped")), Wait(4_999), RunTimer, Attach { kind: XhrPolling }],
            ),
        ),
        (
            "late-timer",
            input(
                Http,
                vec![
                    Attach { kind: XhrPolling },
                    Wait(9_000),
                    Attach { kind: XhrStreaming },
                    HandleTimeout(0),
                    SendFlush(t("after a late timer")),
                ],
            ),
        ),
        (
            "terminate-http",
            input(
                Http,
                vec![
                    Attach { kind: XhrStreaming },
                    Send(t("unflushed")),
                    Terminate {
                        code: 1001,
                        reason: t("Server going away"),
                    },
                    Attach { kind: XhrPolling },
                ],
            ),
        ),
        (
            "websocket-echo-close",
            input(
                WebSocket,
                vec![
                    SendFlush(t("hello")),
                    SendFlush(t("")),
                    RunTimer,
                    Send(t("bye")),
                    Close {
                        code: 3000,
                        reason: t("Go away!"),
                    },
                ],
            ),
        ),
        (
            "broadcast-mixed",
            input(
                Http,
                vec![
                    Attach { kind: XhrStreaming },
                    SendShared(t("to everyone \u{2028}")),
                    Send(t("to one")),
                    SendShared(t("")),
                    Flush,
                    Close {
                        code: 1000,
                        reason: t("Normal closure"),
                    },
                ],
            ),
        ),
        (
            "broadcast-raw",
            input(RawWebSocket, vec![SendShared(t("\u{1f600} bare")), Send(t("x")), Flush]),
        ),
        (
            "websocket-peer-gone",
            input(WebSocket, vec![SendFlush(t("x")), ReceiverGone(0), Send(t("late"))]),
        ),
        (
            "raw-websocket-messages",
            input(
                RawWebSocket,
                vec![
                    SendFlush(t("a")),
                    Send(t("b")),
                    Send(t("c")),
                    Flush,
                    RunTimer,
                    Close {
                        code: 4000,
                        reason: t("app close"),
                    },
                ],
            ),
        ),
        (
            "raw-websocket-terminate",
            input(
                RawWebSocket,
                vec![
                    SendFlush(t("a")),
                    Terminate {
                        code: 1001,
                        reason: t("Server going away"),
                    },
                ],
            ),
        ),
        (
            "zero-timers",
            Input {
                heartbeat_ms: 0,
                disconnect_ms: 0,
                response_limit: 0,
                ..input(
                    Http,
                    vec![
                        Attach { kind: EventSource },
                        RunTimer,
                        SendFlush(t("m")),
                        RunTimer,
                        Attach { kind: HtmlFile },
                    ],
                )
            },
        ),
    ]
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/session");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, inp) in seeds() {
        let bytes = inp.encode();
        let back = Input::decode(&bytes).expect("decodes");
        assert_eq!(back, inp, "{name}: the encoding does not decode to the seed");
        std::fs::write(dir.join(name), &bytes).unwrap();
        println!("{name}: {} bytes, {} ops", bytes.len(), inp.ops.len());
    }
}
