//! The routes file (Pushpin spec section 3): tokenizer, route/target parsing, route table and
//! selection. Sans-IO: callers hand in the file's text (or `--route` lines) and get a
//! [`RouteTable`] plus warning lines to log.
//!
//! ```text
//! # condition                                  targets (space separated, failover order)
//! example.com,path_beg=/api/,replace_beg=/    localhost:8080 localhost:8081,ssl
//! *,proto=ws                                   [::1]:9000,over_http,sub=news
//! id=internal                                  zhttpreq/ipc:///tmp/worker
//! ```
//!
//! Deliberate differences from Pushpin, all in the direction of failing loudly or meaning what the
//! documentation says:
//! - A line that can't be parsed fails the load ([`RoutesError`]) instead of being skipped.
//! - Generated ids write `ssl` for `ssl=yes` and `no-ssl` for `ssl=no` (Pushpin swaps them).
//! - A quoted `=` is literal; tabs separate tokens like spaces.
//! - Selection ranks strictly by (proto, path_beg length, ssl).
//! - Only explicit ids are looked up by id, and the route's `path_beg` must match.
//! - Domains compare ASCII-case-insensitively.

mod route;
mod table;
mod tokenizer;

pub use route::{Proto, Route, Target, TargetKind};
pub use table::{RouteQuery, RouteTable, RoutesError, ROUTES_FILE_LEN_MAX, ROUTES_MAX};
pub use tokenizer::{
    tokenize_line, Token, PROPS_PER_TOKEN_MAX, ROUTE_LINE_LEN_MAX, TOKENS_PER_LINE_MAX,
};
