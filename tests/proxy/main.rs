//! End to end through the compiled `proxy` example (`examples/proxy`), with real
//! programs: curl, `python3 -m http.server`, a stdlib WSGI app, a hyper app, tonic, an echo server.
//! Every step is bounded in time, every child process is killed on drop, and
//! everything listens on 127.0.0.1.

mod app_pool;
mod cgi;
mod grpc;
mod harness;
mod http;
mod outbound;
mod overload;
mod reload;
mod tcp;
mod workload;
