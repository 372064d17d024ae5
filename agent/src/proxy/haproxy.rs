//! HAProxy through its runtime API and master socket: the real [`super::Proxy`].
