//! Policy semantics tests.
