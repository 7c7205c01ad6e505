//! Sans-IO core of the SockJS protocol (version 0.3.3), as served by
//! sockjs-node 0.3.24: URL routing, frames and the SockJS quoting rule,
//! client payload decoding, transport framing, every endpoint's HTTP answer,
//! the session state machine, and where a client's WebSocket frames end. No
//! sockets, no clock, no napi: drivers pass in bytes and times and carry out
//! what comes back.

pub mod answer;
pub mod bounds;
pub mod decode;
pub mod frame;
pub mod origin;
pub mod quote;
pub mod receiver;
pub mod route;
pub mod session;
