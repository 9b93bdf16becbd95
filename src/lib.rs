//! forgebridge: a translating reverse proxy for forge Organizations APIs. A client speaks its
//! own forge's dialect; forgebridge maps the request through declarative mapping files onto a
//! canonical operation, performs it on the upstream forge in that forge's dialect, and answers
//! in the client's dialect.

pub mod backend;
pub mod bounded;
pub mod canonical;
pub mod config;
pub mod conformance;
pub mod dialect;
pub mod gateway;
pub mod layers;
pub mod logging;
pub mod mapping;
pub mod server;
